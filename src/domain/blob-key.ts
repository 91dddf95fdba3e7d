import { randomBytes } from 'node:crypto'
import { type ChunkHash, isChunkHash } from './hashes.js'

/**
 * One stored copy of a chunk's bytes: the chunk's hash and the generation it was written under.
 *
 * Chunks are content-addressed, so without generations a chunk deleted by the garbage collector
 * and uploaded again would be stored under the very name the collector is still deleting: a
 * collector paused between its claim and its delete (VM suspend, SIGSTOP, a second collector
 * taking its claim over) would then remove the new bytes of a live file. Every write gets a
 * generation of its own, and the chunk row records which one holds its bytes, so a late delete
 * can only ever remove the copy it claimed.
 */
export interface BlobKey {
  hash: ChunkHash
  /**
   * 16 lowercase hex digits, random per write; '' for copies stored before generations existed
   * (their name is the bare hash), which are never written again.
   */
  generation: string
}

/** The generation of the copies stored before generations existed. */
export const LEGACY_GENERATION = ''

const GENERATION = /^([0-9a-f]{16})?$/

export const isGeneration = (value: unknown): value is string =>
  typeof value === 'string' && GENERATION.test(value)

/** 64 random bits: two writes of one chunk never share a generation. */
export const newGeneration = (): string => randomBytes(8).toString('hex')

export const isBlobKey = (value: unknown): value is BlobKey =>
  typeof value === 'object' &&
  value !== null &&
  isChunkHash((value as BlobKey).hash) &&
  isGeneration((value as BlobKey).generation)

/** `<hash>` or `<hash>.<generation>`: a blob's name in a store (a file name, an object key). */
export const blobName = ({ hash, generation }: BlobKey): string =>
  generation === LEGACY_GENERATION ? hash : `${hash}.${generation}`

/** The key a blob name stands for, or null when the name is not one. */
export function parseBlobName(name: string): BlobKey | null {
  const [hash, generation = LEGACY_GENERATION, ...rest] = name.split('.')
  if (rest.length > 0 || !isChunkHash(hash) || (name.includes('.') && generation === '')) return null
  return isGeneration(generation) ? { hash, generation } : null
}

import { createHash } from 'node:crypto'

/** A chunk is named by the lowercase hex SHA-256 of its bytes. */
export type ChunkHash = string

const SHA256_HEX = /^[0-9a-f]{64}$/

export const isChunkHash = (value: unknown): value is ChunkHash =>
  typeof value === 'string' && SHA256_HEX.test(value)

export const sha256Hex = (data: Buffer | string): string => createHash('sha256').update(data).digest('hex')

/**
 * A file's content hash, which is also its download ETag: SHA-256 over the concatenated
 * binary SHA-256 of its chunks, as Dropbox's content_hash does. It is computed from the chunk
 * list alone, so `complete` never has to re-read a deduplicated file.
 */
export function contentHashOf(chunkHashes: readonly ChunkHash[]): string {
  const hash = createHash('sha256')
  for (const chunk of chunkHashes) hash.update(Buffer.from(chunk, 'hex'))
  return hash.digest('hex')
}

/** How many entries of a chunk list name each chunk: what a version adds to reference counts. */
export function countByHash(chunks: readonly { hash: ChunkHash }[]): Map<ChunkHash, number> {
  const counts = new Map<ChunkHash, number>()
  for (const chunk of chunks) counts.set(chunk.hash, (counts.get(chunk.hash) ?? 0) + 1)
  return counts
}

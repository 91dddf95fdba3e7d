import { invalid } from './errors.js'
import { type ChunkHash, isChunkHash } from './hashes.js'

export const MiB = 1024 * 1024
/** Fixed-size chunking is the default (contract: 4 MiB). */
export const DEFAULT_CHUNK_SIZE = 4 * MiB
/** Contract: a declared variable chunk is at most 16 MiB. */
export const MAX_CHUNK_SIZE = 16 * MiB
/** Far beyond any real file, but small enough that sizes stay exact in a JS number and in SQL bigint. */
export const MAX_FILE_SIZE = 16 * 1024 ** 4
/**
 * Chunks one file may have. Bounds the work of one declaration (its JSON, its rows, its
 * classification) while fitting what clients send: 10 GiB in chunks as small as 160 KiB (the
 * content-defined chunker's smallest is 512 KiB), 256 GiB in the default 4 MiB chunks, 1 TiB
 * in 16 MiB ones. A larger file declares larger chunks.
 */
export const MAX_CHUNKS = 65_536
/**
 * The largest JSON body an upload init needs: MAX_CHUNKS hashes (67 bytes each, quoted, with a
 * comma) and sizes (9), with room for whitespace; the rest of the body is small.
 */
export const MAX_DECLARATION_BYTES = 8 * MiB

export interface PlannedChunk {
  index: number
  hash: ChunkHash
  size: number
  /** Byte offset of this chunk in the file. */
  offset: number
}

export interface ChunkPlan {
  size: number
  /** The nominal chunk size reported to clients: the fixed size, or the largest declared one. */
  chunkSize: number
  chunks: PlannedChunk[]
}

/** The server's chunking rules (from its configuration). */
export interface ChunkRules {
  /**
   * Every declared chunk but the last is at least this large (UPLOAD_MIN_CHUNK_BYTES). Fixed-size
   * chunks meet it: the configuration keeps it at most DEFAULT_CHUNK_SIZE.
   */
  minChunkSize: number
  /** The size of each chunk but the last when a declaration gives no `chunkSizes`. */
  fixedChunkSize?: number
}

export interface ChunkPlanInput {
  size: unknown
  chunkHashes: unknown
  chunkSizes?: unknown
}

/**
 * Checks what a client declares at upload init and lays the file out as chunks. Every way
 * the declaration can be inconsistent (sizes, counts, hash format) is a 400 here, before
 * anything is stored.
 */
export function planChunks(input: ChunkPlanInput, rules: ChunkRules): ChunkPlan {
  const { size, chunkHashes, chunkSizes } = input
  const { minChunkSize, fixedChunkSize = DEFAULT_CHUNK_SIZE } = rules
  if (typeof size !== 'number' || !Number.isSafeInteger(size) || size < 0) {
    throw invalid('size must be a non-negative integer')
  }
  if (size > MAX_FILE_SIZE) throw invalid(`size must be at most ${MAX_FILE_SIZE} bytes`)
  if (!Array.isArray(chunkHashes)) throw invalid('chunkHashes must be an array of SHA-256 hex strings')
  if (chunkHashes.length > MAX_CHUNKS) {
    throw invalid(
      `a file has at most ${MAX_CHUNKS} chunks (${chunkHashes.length} were declared): use larger chunks`,
    )
  }
  chunkHashes.forEach((hash, index) => {
    if (!isChunkHash(hash)) throw invalid(`chunkHashes[${index}] is not a lowercase hex SHA-256`)
  })
  const sizes =
    chunkSizes === undefined || chunkSizes === null
      ? fixedSizes(size, fixedChunkSize)
      : declaredSizes(chunkSizes, size, minChunkSize)
  if (sizes.length !== chunkHashes.length) {
    throw invalid(
      `a file of ${size} bytes has ${sizes.length} chunks, but ${chunkHashes.length} hashes were given`,
    )
  }
  let offset = 0
  const chunks = sizes.map((chunkSize, index) => {
    const chunk = { index, hash: chunkHashes[index] as ChunkHash, size: chunkSize, offset }
    offset += chunkSize
    return chunk
  })
  // A loop, not Math.max(...sizes): spreading a long list overflows the stack.
  const nominal =
    chunkSizes === undefined || chunkSizes === null
      ? fixedChunkSize
      : sizes.reduce((largest, chunkSize) => Math.max(largest, chunkSize), 0)
  return { size, chunkSize: nominal, chunks }
}

function fixedSizes(size: number, chunkSize: number): number[] {
  const count = Math.ceil(size / chunkSize)
  return Array.from({ length: count }, (_, i) => Math.min(chunkSize, size - i * chunkSize))
}

function declaredSizes(chunkSizes: unknown, size: number, minChunkSize: number): number[] {
  if (!Array.isArray(chunkSizes)) throw invalid('chunkSizes must be an array of integers')
  if (chunkSizes.length > MAX_CHUNKS) throw invalid(`a file has at most ${MAX_CHUNKS} chunks`)
  let total = 0
  chunkSizes.forEach((chunkSize, index) => {
    if (typeof chunkSize !== 'number' || !Number.isSafeInteger(chunkSize) || chunkSize < 1) {
      throw invalid(`chunkSizes[${index}] must be a positive integer`)
    }
    if (chunkSize > MAX_CHUNK_SIZE)
      throw invalid(`chunkSizes[${index}] is larger than ${MAX_CHUNK_SIZE} bytes`)
    // The last chunk is whatever the file has left; every other one carries its share of bytes.
    if (chunkSize < minChunkSize && index < chunkSizes.length - 1) {
      throw invalid(
        `chunkSizes[${index}] is ${chunkSize} bytes: every chunk but the last must be at least ${minChunkSize} bytes`,
        { index },
      )
    }
    total += chunkSize
  })
  if (total !== size) throw invalid(`chunkSizes add up to ${total}, not to size ${size}`)
  return chunkSizes as number[]
}

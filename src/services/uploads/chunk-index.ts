import { AppError } from '../../domain/errors.js'

/**
 * A chunk index as a path or a proof names it: decimal digits, at most nine of them. Anything
 * else is no index at all (NaN), which `assertChunkIndex` refuses like one out of range, once
 * the session it would index is known (a session not found is 404 first).
 */
export function chunkIndexOf(raw: string): number {
  return /^\d{1,9}$/.test(raw) ? Number(raw) : Number.NaN
}

/** An index of one of the session's chunks: INVALID_CHUNK_INDEX otherwise. */
export function assertChunkIndex(index: number, totalChunks: number): number {
  if (!Number.isInteger(index) || index < 0 || index >= totalChunks) {
    throw new AppError('INVALID_CHUNK_INDEX', `chunk index must be an integer from 0 to ${totalChunks - 1}`)
  }
  return index
}

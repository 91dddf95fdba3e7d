import { invalid } from '../domain/errors.js'

export const DEFAULT_PAGE_SIZE = 100
export const MAX_PAGE_SIZE = 1000

/** One page asked for: how many items, and after which (a cursor from `encodeCursor`). */
export interface PageRequest {
  /** Absent: DEFAULT_PAGE_SIZE. */
  limit?: number
  /** Absent: the first page. */
  cursor?: string
}

/** `limit` as a query string gives it: 1 to MAX_PAGE_SIZE, DEFAULT_PAGE_SIZE when absent; null when neither. */
export function pageLimitOf(raw: string | undefined): number | null {
  if (raw === undefined || raw === '') return DEFAULT_PAGE_SIZE
  const limit = /^\d+$/.test(raw) ? Number(raw) : Number.NaN
  return Number.isInteger(limit) && limit >= 1 && limit <= MAX_PAGE_SIZE ? limit : null
}

export const LIMIT_MESSAGE = `limit must be an integer from 1 to ${MAX_PAGE_SIZE}`

/**
 * `limit` from a query string not yet checked at the edge (routes with a schema use
 * `pageQuery` of http/routes/paging-schemas.ts instead).
 */
export function parseLimit(raw: unknown): number {
  const limit =
    typeof raw === 'number' && Number.isInteger(raw)
      ? pageLimitOf(String(raw))
      : raw === undefined || typeof raw === 'string'
        ? pageLimitOf(raw)
        : null
  if (limit === null) throw invalid(LIMIT_MESSAGE)
  return limit
}

/** An opaque cursor: the sort key of the last item of a page. */
export function encodeCursor(key: readonly unknown[]): string {
  return Buffer.from(JSON.stringify(key), 'utf8').toString('base64url')
}

/**
 * The sort key inside a cursor from `encodeCursor`, checked by `accept` (which answers the
 * typed key, or undefined when the shape is wrong). Absent or empty: undefined.
 */
export function decodeCursor<T>(raw: unknown, accept: (key: unknown[]) => T | undefined): T | undefined {
  if (raw === undefined || raw === '') return undefined
  try {
    const key = JSON.parse(Buffer.from(String(raw), 'base64url').toString('utf8')) as unknown
    const accepted = Array.isArray(key) ? accept(key) : undefined
    if (accepted !== undefined) return accepted
  } catch {
    // fall through: the same answer for every malformed cursor
  }
  throw invalid('cursor is not one this server handed out')
}

/**
 * Rows per multi-row INSERT. SQLite binds at most 32,766 parameters per statement and
 * PostgreSQL 65,535; 500 rows of up to 6 columns stay far below both.
 */
export const ROWS_PER_INSERT = 500
/** Values per `IN (...)` list or CASE, for the same limits. */
export const VALUES_PER_STATEMENT = 1000

/** Splits `items` into consecutive slices of at most `size`. */
export function batches<T>(items: readonly T[], size: number): T[][] {
  const slices: T[][] = []
  for (let start = 0; start < items.length; start += size) slices.push(items.slice(start, start + size))
  return slices
}

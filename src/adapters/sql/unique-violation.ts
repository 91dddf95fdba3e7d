/** What a failed statement broke, when it broke a uniqueness rule. */
export type UniqueViolation = 'primary-key' | 'unique'

/** PostgreSQL's SQLSTATE for unique_violation (primary keys included). */
const PG_UNIQUE_VIOLATION = '23505'
/** PostgreSQL names a primary key constraint `<table>_pkey` unless told otherwise. */
const PG_PRIMARY_KEY_SUFFIX = '_pkey'

/**
 * Recognises a unique-constraint error of either driver, telling a primary-key clash (a
 * reused id: a bug, to be rethrown as is) from a clash on another unique index (a user-facing
 * conflict such as a taken name). Null for any other error.
 */
export function uniqueViolation(error: unknown): UniqueViolation | null {
  if (typeof error !== 'object' || error === null) return null
  const { code, constraint } = error as { code?: unknown; constraint?: unknown }
  // better-sqlite3 reports SQLite's extended result codes by name.
  if (code === 'SQLITE_CONSTRAINT_PRIMARYKEY') return 'primary-key'
  if (code === 'SQLITE_CONSTRAINT_UNIQUE') return 'unique'
  if (code === PG_UNIQUE_VIOLATION) {
    return typeof constraint === 'string' && constraint.endsWith(PG_PRIMARY_KEY_SUFFIX)
      ? 'primary-key'
      : 'unique'
  }
  return null
}

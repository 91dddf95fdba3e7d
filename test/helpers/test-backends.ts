/** The metadata databases the tests know. */
export const DATABASE_KINDS = ['sqlite', 'postgres'] as const
export type DatabaseKind = (typeof DATABASE_KINDS)[number]

/**
 * The databases this run tests, from `TEST_BACKENDS` (comma-separated, e.g. `sqlite` or
 * `sqlite,postgres`; every database when unset), as Kysely's own tests pick their dialects.
 * Read by global setup (main process) and by the per-database loops (workers inherit the env).
 * A name it does not know is an error, not a silently empty run.
 */
export function selectedDatabases(env: Record<string, string | undefined> = process.env): DatabaseKind[] {
  const raw = env.TEST_BACKENDS?.trim()
  if (!raw) return [...DATABASE_KINDS]
  const names = raw.split(',').map((name) => name.trim().toLowerCase())
  const unknown = names.filter((name) => !(DATABASE_KINDS as readonly string[]).includes(name))
  if (unknown.length > 0 || names.length === 0) {
    throw new Error(`TEST_BACKENDS=${raw}: expected a comma-separated list of ${DATABASE_KINDS.join(', ')}`)
  }
  return DATABASE_KINDS.filter((kind) => names.includes(kind))
}

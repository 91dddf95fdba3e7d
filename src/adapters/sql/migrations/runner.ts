import { type Kysely, type Migration, sql } from 'kysely'
import type { SqlDialect } from '../dialect.js'

/**
 * Runs migrations one transaction each, instead of Kysely's `Migrator`, which runs them
 * without any transaction on SQLite (its SQLite adapter says there is no transactional DDL;
 * SQLite has it: ALTER TABLE, CREATE INDEX and the rest roll back like any write) and in one
 * transaction for all of them on PostgreSQL.
 *
 * A migration and the row that records it commit together: after a crash or a failure the
 * migration is either applied and recorded, or neither. The ones before it stay applied.
 *
 * So a migration cannot use what refuses a transaction: PostgreSQL's CREATE INDEX
 * CONCURRENTLY, and SQLite's `PRAGMA foreign_keys`, which is a no-op inside one (a table
 * rebuild uses `PRAGMA defer_foreign_keys` instead).
 */

/**
 * The table Kysely's `Migrator` created and filled, with its columns exactly (kysely
 * dist/esm/migration/migrator.js), so that databases it migrated carry on here. Its lock
 * table, `kysely_migration_lock`, is no longer used and is left as it is.
 */
const MIGRATION_TABLE = 'kysely_migration'

// A type, not an interface: `withTables` wants a record, and an interface has no index signature.
type MigrationTables = {
  [MIGRATION_TABLE]: {
    name: string
    /** When it was applied, as an ISO 8601 string (Kysely's format). */
    timestamp: string
  }
}

/**
 * The key of Kysely's own PostgreSQL migration lock (dialect/postgres/postgres-adapter.js).
 * Session-level and transaction-level advisory locks on one key exclude each other, so during
 * a rolling upgrade a node still running Kysely's `Migrator` and a node running this one never
 * migrate at the same time.
 */
const POSTGRES_MIGRATION_LOCK_KEY = 3853314791062309107n

/**
 * Applies every migration not yet recorded, in name order, and returns the names applied.
 * Throws on the first that fails, after rolling it back; names the migration in the message.
 *
 * Several processes may run this at once on one database: each migration is applied once.
 * On PostgreSQL each transaction first takes an advisory lock; on SQLite the caller's
 * transactions must begin IMMEDIATE (sqlite-metadata-store.ts), which takes the write lock.
 * Either way, what is recorded is read only once the lock is held.
 */
export async function runMigrations(
  db: Kysely<unknown>,
  dialect: SqlDialect,
  migrations: Readonly<Record<string, Migration>>,
): Promise<string[]> {
  const names = Object.keys(migrations).sort()
  const applied: string[] = []
  for (;;) {
    const next = await applyNextPending(db, dialect, names, migrations)
    if (next === null) return applied
    applied.push(next)
  }
}

/**
 * In one transaction: takes the lock, finds the first migration not recorded, applies and
 * records it. Null when there was none left. One migration per transaction, so that a failure
 * rolls back only the migration that failed.
 */
async function applyNextPending(
  db: Kysely<unknown>,
  dialect: SqlDialect,
  names: readonly string[],
  migrations: Readonly<Record<string, Migration>>,
): Promise<string | null> {
  let running: string | undefined
  try {
    return await inMigrationTransaction(db, dialect, async (trx) => {
      if (dialect === 'postgres') {
        // Held until this transaction ends, so it can never outlive it on a pooled connection.
        await sql`select pg_advisory_xact_lock(${sql.lit(POSTGRES_MIGRATION_LOCK_KEY)})`.execute(trx)
      }
      await createMigrationTableIfMissing(trx)
      const recorded = await recordedNames(trx)
      const pending = firstPending(names, recorded)
      if (pending === null) return null
      running = pending
      await migrations[pending]!.up(trx)
      await trx
        .withTables<MigrationTables>()
        .insertInto(MIGRATION_TABLE)
        .values({ name: pending, timestamp: new Date().toISOString() })
        .execute()
      return pending
    })
  } catch (error) {
    if (running === undefined) throw error
    throw new Error(`Database migration ${running} failed: ${String(error)}`, { cause: error })
  }
}

/**
 * PostgreSQL runs the transaction READ COMMITTED whatever `default_transaction_isolation`
 * says: each statement after the lock then sees what the previous holder committed. Under
 * REPEATABLE READ the snapshot would date from the lock statement, before the wait, and a
 * migration applied meanwhile would look pending.
 */
function inMigrationTransaction<T>(
  db: Kysely<unknown>,
  dialect: SqlDialect,
  work: (trx: Kysely<unknown>) => Promise<T>,
): Promise<T> {
  const transaction = db.transaction()
  const readCommitted = dialect === 'postgres' ? transaction.setIsolationLevel('read committed') : transaction
  return readCommitted.execute(work)
}

/** Inside the lock, so that two processes starting on an empty database do not race to create it. */
async function createMigrationTableIfMissing(trx: Kysely<unknown>): Promise<void> {
  await trx.schema
    .createTable(MIGRATION_TABLE)
    .ifNotExists()
    .addColumn('name', 'varchar(255)', (c) => c.notNull().primaryKey())
    .addColumn('timestamp', 'varchar(255)', (c) => c.notNull())
    .execute()
}

async function recordedNames(trx: Kysely<unknown>): Promise<Set<string>> {
  const rows = await trx.withTables<MigrationTables>().selectFrom(MIGRATION_TABLE).select('name').execute()
  return new Set(rows.map((row) => row.name))
}

/**
 * The first name not recorded, or null. Refuses, as Kysely's `Migrator` did, a database that
 * records a migration this code does not have (it was migrated by a newer version) and a new
 * migration that sorts before one already applied (it would run out of order).
 */
function firstPending(names: readonly string[], recorded: ReadonlySet<string>): string | null {
  const known = new Set(names)
  const unknown = [...recorded].filter((name) => !known.has(name)).sort()
  if (unknown.length > 0) {
    throw new Error(
      `The database has migrations this version does not know (${unknown.join(', ')}): ` +
        'it was migrated by a newer version',
    )
  }
  const pending = names.find((name) => !recorded.has(name))
  if (pending === undefined) return null
  const appliedAfter = names.filter((name) => name > pending && recorded.has(name))
  if (appliedAfter.length > 0) {
    throw new Error(
      `Migration ${pending} sorts before ${appliedAfter.join(', ')}, already applied: ` +
        'a new migration must sort after every released one',
    )
  }
  return pending
}

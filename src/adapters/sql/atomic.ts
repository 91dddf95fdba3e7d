import { type Kysely, sql } from 'kysely'
import type { Database } from './schema.js'

/**
 * Runs several statements as one unit: in the caller's transaction when there is one,
 * otherwise in a transaction of their own, so a multi-statement write is never half done.
 */
export function atomically<T>(db: Kysely<Database>, work: (db: Kysely<Database>) => Promise<T>): Promise<T> {
  return db.isTransaction ? work(db) : db.transaction().execute(work)
}

let savepoints = 0

/**
 * Runs one statement that may fail on a constraint so that the failure leaves the caller's
 * transaction usable. PostgreSQL aborts the whole transaction on a failed statement, SQLite
 * undoes only that statement; a savepoint makes PostgreSQL behave like SQLite, so a service
 * can catch NAME_TAKEN inside `transaction` and go on (e.g. with a conflicted-copy name).
 * Statements of one transaction must not run concurrently (they share one connection anyway).
 */
export async function withSavepoint<T>(db: Kysely<Database>, statement: () => Promise<T>): Promise<T> {
  if (!db.isTransaction) return statement()
  savepoints += 1
  const name = sql.id(`tessera_savepoint_${savepoints}`)
  await sql`savepoint ${name}`.execute(db)
  try {
    const result = await statement()
    await sql`release savepoint ${name}`.execute(db)
    return result
  } catch (error) {
    await sql`rollback to savepoint ${name}`.execute(db)
    await sql`release savepoint ${name}`.execute(db)
    throw error
  }
}

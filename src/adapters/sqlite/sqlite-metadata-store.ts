import { mkdirSync } from 'node:fs'
import path from 'node:path'
import { setImmediate } from 'node:timers/promises'
import BetterSqlite3 from 'better-sqlite3'
import {
  CompiledQuery,
  type DatabaseConnection,
  type Driver,
  Kysely,
  type QueryResult,
  SqliteDialect,
  type SqliteDialectConfig,
  SqliteDriver,
} from 'kysely'
import type { MetadataStore } from '../../ports/metadata-store.js'
import type { Database } from '../sql/schema.js'
import { openMigrated } from '../sql/sql-metadata-store.js'
import { WalDurability } from './wal-durability.js'

export interface SqliteMetadataStoreOptions {
  /** Path of the database file (its directory is created), or ':memory:'. */
  file: string
}

/** How long a writer waits for another process's write lock before failing with SQLITE_BUSY. */
const BUSY_TIMEOUT_MS = 5000
const IN_MEMORY = ':memory:'

/**
 * Opens (creating if needed) and migrates the SQLite database, and answers the store on it.
 * One connection: Kysely runs one query or transaction at a time on it.
 */
export async function openSqliteMetadataStore(options: SqliteMetadataStoreOptions): Promise<MetadataStore> {
  const { file } = options
  if (file !== IN_MEMORY) mkdirSync(path.dirname(path.resolve(file)), { recursive: true })
  const database = new BetterSqlite3(file)
  try {
    database.pragma(`busy_timeout = ${BUSY_TIMEOUT_MS}`)
    // WAL: readers do not block the writer. synchronous=NORMAL: SQLite does not fsync the WAL at
    // each commit, holding the event loop for it; the store fsyncs it itself, off the loop and
    // once for all the commits that end together, before any of them is answered (wal-durability.ts).
    database.pragma('journal_mode = WAL')
    database.pragma('synchronous = NORMAL')
    // Off by default in SQLite; the schema's cascades (upload chunk lists) rely on it.
    database.pragma('foreign_keys = ON')
  } catch (error) {
    database.close()
    throw error
  }
  const durability = new WalDurability(database, file === IN_MEMORY ? null : path.resolve(file))
  const db = new Kysely<Database>({
    dialect: new ImmediateSqliteDialect({ database: withStatementCache(database) }, durability),
  })
  const store = await openMigrated(db, 'sqlite')
  // The migrations' schema changes count no changed rows: make them durable here.
  await durability.syncAll()
  return store
}

/** Distinct SQL texts kept prepared; the queries are a fixed set, so this is never reached in practice. */
const STATEMENT_CACHE_SIZE = 500

/**
 * Kysely's SQLite driver prepares every query anew, and preparing costs as much as running a
 * small query. The statements are reusable (Kysely runs one query at a time on the single
 * connection, and none is left iterating), so they are kept by their SQL text.
 */
function withStatementCache(database: BetterSqlite3.Database): SqliteDialectConfig['database'] {
  const statements = new Map<string, BetterSqlite3.Statement>()
  return {
    close: () => {
      statements.clear()
      database.close()
    },
    prepare: (text: string) => {
      let statement = statements.get(text)
      if (!statement) {
        if (statements.size >= STATEMENT_CACHE_SIZE) statements.clear()
        statement = database.prepare(text)
        statements.set(text, statement)
      }
      return statement
    },
  }
}

/**
 * Transactions begin IMMEDIATE: they take the write lock at BEGIN rather than at their first
 * write. Within this process the single connection serialises transactions anyway; against
 * another process (a CLI on the same file), a deferred transaction that read first could
 * only fail with SQLITE_BUSY when upgrading to write, where busy_timeout does not help.
 */
class ImmediateSqliteDialect extends SqliteDialect {
  readonly #config: SqliteDialectConfig
  readonly #durability: WalDurability

  constructor(config: SqliteDialectConfig, durability: WalDurability) {
    super(config)
    this.#config = config
    this.#durability = durability
  }

  override createDriver(): Driver {
    return new ImmediateSqliteDriver(this.#config, this.#durability)
  }
}

/**
 * Begins transactions IMMEDIATE, and answers a query or transaction only once what it
 * committed, and what it could have read, is durable: the wait happens after the connection is
 * released, so the next transaction runs (and its commit joins the next sync) meanwhile.
 */
class ImmediateSqliteDriver extends SqliteDriver {
  readonly #durability: WalDurability

  constructor(config: SqliteDialectConfig, durability: WalDurability) {
    super(config)
    this.#durability = durability
  }

  override async releaseConnection(): Promise<void> {
    const durable = this.#durability.afterUse()
    await super.releaseConnection()
    await durable()
  }

  override async destroy(): Promise<void> {
    await super.destroy()
    await this.#durability.close()
  }

  override async beginTransaction(connection: DatabaseConnection): Promise<void> {
    await connection.executeQuery(CompiledQuery.raw('begin immediate'))
  }

  override async acquireConnection(): Promise<DatabaseConnection> {
    return new YieldingConnection(await super.acquireConnection())
  }
}

/** Synchronous SQLite work after which a query gives the event loop a turn (YieldingConnection). */
const YIELD_AFTER_MS = 10
/** When the event loop last turned, as far as the queries know; and whether they are watching for the next turn. */
let lastTurn = performance.now()
let watchingForTurn = false

/**
 * better-sqlite3 runs every query on the main thread, and Kysely awaits it only as a promise that
 * is already settled: a transaction of many statements (a declaration of 65,536 chunks, a complete
 * that references them) would hold the event loop for all of them, and with it every request in
 * flight, downloads and health checks included. After each query that ends a stretch of more than
 * YIELD_AFTER_MS of such work, this waits for one turn of the loop. Other queries still wait for
 * the one connection; everything else goes on.
 */
class YieldingConnection implements DatabaseConnection {
  constructor(private readonly connection: DatabaseConnection) {}

  async executeQuery<R>(query: CompiledQuery): Promise<QueryResult<R>> {
    if (!watchingForTurn) {
      // The loop has turned since the last watch ended: a stretch of work starts here.
      watchingForTurn = true
      lastTurn = performance.now()
      globalThis.setImmediate(() => {
        watchingForTurn = false
      })
    }
    const result = await this.connection.executeQuery<R>(query)
    if (watchingForTurn && performance.now() - lastTurn > YIELD_AFTER_MS) await setImmediate()
    return result
  }

  streamQuery<R>(query: CompiledQuery, chunkSize?: number): AsyncIterableIterator<QueryResult<R>> {
    return this.connection.streamQuery<R>(query, chunkSize)
  }
}

import { type Kysely, sql } from 'kysely'
import type { MetadataStore, Repositories } from '../../ports/metadata-store.js'
import type { SqlDialect } from './dialect.js'
import { migrateToLatest, migrations } from './migrations/index.js'
import { checkRequestSchema } from './request-schema.js'
import type { Database } from './schema.js'
import { SqlAuditRepository } from './sql-audit-repository.js'
import { SqlChunkRepository } from './sql-chunk-repository.js'
import { SqlCollectorRepository } from './sql-collector-repository.js'
import { SqlJournalRepository } from './sql-journal-repository.js'
import { SqlLeaseRepository } from './sql-lease-repository.js'
import { SqlNodeRepository } from './sql-node-repository.js'
import { SqlSessionRepository } from './sql-session-repository.js'
import { SqlSettingRepository } from './sql-setting-repository.js'
import { SqlSharingRepository } from './sql-sharing-repository.js'
import { SqlUploadRepository } from './sql-upload-repository.js'
import { SqlUserRepository } from './sql-user-repository.js'
import { SqlVersionRepository } from './sql-version-repository.js'

/** The repositories over one handle: the pool (auto-commit) or a transaction. */
function repositoriesFor(
  db: Kysely<Database>,
  dialect: SqlDialect,
): Repositories & { chunks: SqlChunkRepository } {
  return {
    users: new SqlUserRepository(db, dialect),
    sessions: new SqlSessionRepository(db),
    nodes: new SqlNodeRepository(db),
    versions: new SqlVersionRepository(db),
    chunks: new SqlChunkRepository(db, dialect),
    uploads: new SqlUploadRepository(db, dialect),
    collector: new SqlCollectorRepository(db, dialect),
    audit: new SqlAuditRepository(db),
    journal: new SqlJournalRepository(db),
    sharing: new SqlSharingRepository(db),
    settings: new SqlSettingRepository(db),
    leases: new SqlLeaseRepository(db),
  }
}

/**
 * The metadata store on SQLite or PostgreSQL: the same queries for both, over a Kysely
 * instance that sqlite/ or postgres/ opened and migrated.
 *
 * Inside `transaction`, use only the `tx` repositories: on SQLite the store's own
 * repositories wait for the single connection, which the transaction holds until it ends.
 */
export class SqlMetadataStore implements MetadataStore {
  readonly users: Repositories['users']
  readonly sessions: Repositories['sessions']
  readonly nodes: Repositories['nodes']
  readonly versions: Repositories['versions']
  readonly chunks: Repositories['chunks']
  readonly uploads: Repositories['uploads']
  readonly collector: Repositories['collector']
  readonly audit: Repositories['audit']
  readonly journal: Repositories['journal']
  readonly sharing: Repositories['sharing']
  readonly settings: Repositories['settings']
  readonly leases: Repositories['leases']

  constructor(
    private readonly db: Kysely<Database>,
    private readonly dialect: SqlDialect,
  ) {
    const repositories = repositoriesFor(db, dialect)
    this.users = repositories.users
    this.sessions = repositories.sessions
    this.nodes = repositories.nodes
    this.versions = repositories.versions
    this.chunks = repositories.chunks
    this.uploads = repositories.uploads
    this.collector = repositories.collector
    this.audit = repositories.audit
    this.journal = repositories.journal
    this.sharing = repositories.sharing
    this.settings = repositories.settings
    this.leases = repositories.leases
  }

  async transaction<T>(work: (tx: Repositories) => Promise<T>): Promise<T> {
    for (let attempt = 1; ; attempt++) {
      try {
        return await this.db.transaction().execute(async (tx) => {
          const repositories = repositoriesFor(tx, this.dialect)
          const result = await work(repositories)
          await repositories.chunks.flushReferences()
          return result
        })
      } catch (error) {
        // PostgreSQL gives up on one of two transactions that wait for each other (or, at a
        // stricter isolation, that conflict): running it again is all the client would do,
        // so the client never sees it. The work is re-run whole, so it must not have acted
        // outside the transaction (the services' work does not).
        if (!isTransient(error) || attempt >= TRANSACTION_ATTEMPTS) throw error
        await sleep(Math.random() * RETRY_JITTER_MS * attempt)
      }
    }
  }

  /**
   * Ready to serve requests: the database answers, its schema is at this code's latest
   * migration, and every table and column requests use is there (a database restored from an
   * old dump, or whose schema was dropped, answers `select 1` and fails every request).
   */
  async ping(): Promise<void> {
    const latest = Object.keys(migrations(this.dialect)).sort().at(-1) as string
    const { rows } = await sql<{
      name: string
    }>`select name from ${sql.table(MIGRATION_TABLE)} where name = ${latest}`.execute(this.db)
    if (rows.length === 0) throw new Error(`the schema is not at migration ${latest}`)
    await checkRequestSchema(this.db)
  }

  #closed: Promise<void> | undefined

  /** Idempotent: a second call waits for the first. */
  close(): Promise<void> {
    this.#closed ??= this.db.destroy()
    return this.#closed
  }
}

/** Where the migration runner records what ran (runner.ts). */
const MIGRATION_TABLE = 'kysely_migration'

/** Runs of a transaction that PostgreSQL aborted as a deadlock or serialization failure. */
const TRANSACTION_ATTEMPTS = 5
const RETRY_JITTER_MS = 20
/** SQLSTATE serialization_failure and deadlock_detected. */
const TRANSIENT_CODES = new Set(['40001', '40P01'])

const isTransient = (error: unknown): boolean =>
  TRANSIENT_CODES.has(String((error as { code?: unknown } | null)?.code ?? ''))

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

/** Brings the schema up to date and answers the store on it; on failure the connection is closed. */
export async function openMigrated(db: Kysely<Database>, dialect: SqlDialect): Promise<SqlMetadataStore> {
  try {
    await migrateToLatest(db as Kysely<unknown>, dialect)
  } catch (error) {
    await db.destroy()
    throw error
  }
  return new SqlMetadataStore(db, dialect)
}

import { type Kysely, sql } from 'kysely'
import type { MetadataStore, Repositories } from '../../ports/metadata-store.js'
import type { SqlDialect } from './dialect.js'
import { migrateToLatest } from './migrations/index.js'
import type { Database } from './schema.js'
import { SqlAuditRepository } from './sql-audit-repository.js'
import { SqlChunkRepository } from './sql-chunk-repository.js'
import { SqlCollectorRepository } from './sql-collector-repository.js'
import { SqlJournalRepository } from './sql-journal-repository.js'
import { SqlNodeRepository } from './sql-node-repository.js'
import { SqlSessionRepository } from './sql-session-repository.js'
import { SqlSharingRepository } from './sql-sharing-repository.js'
import { SqlUploadRepository } from './sql-upload-repository.js'
import { SqlUserRepository } from './sql-user-repository.js'
import { SqlVersionRepository } from './sql-version-repository.js'

/** The repositories over one handle: the pool (auto-commit) or a transaction. */
function repositoriesFor(db: Kysely<Database>, dialect: SqlDialect): Repositories {
  return {
    users: new SqlUserRepository(db, dialect),
    sessions: new SqlSessionRepository(db),
    nodes: new SqlNodeRepository(db),
    versions: new SqlVersionRepository(db),
    chunks: new SqlChunkRepository(db, dialect),
    uploads: new SqlUploadRepository(db),
    collector: new SqlCollectorRepository(db),
    audit: new SqlAuditRepository(db),
    journal: new SqlJournalRepository(db),
    sharing: new SqlSharingRepository(db),
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
  }

  transaction<T>(work: (tx: Repositories) => Promise<T>): Promise<T> {
    return this.db.transaction().execute((tx) => work(repositoriesFor(tx, this.dialect)))
  }

  async ping(): Promise<void> {
    await sql`select 1`.execute(this.db)
  }

  #closed: Promise<void> | undefined

  /** Idempotent: a second call waits for the first. */
  close(): Promise<void> {
    this.#closed ??= this.db.destroy()
    return this.#closed
  }
}

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

import { Kysely, PostgresDialect } from 'kysely'
import pg from 'pg'
import type { MetadataStore } from '../../ports/metadata-store.js'
import type { Database } from '../sql/schema.js'
import { openMigrated } from '../sql/sql-metadata-store.js'

export interface PostgresMetadataStoreOptions {
  /** postgres://user:password@host:port/database */
  url: string
  /** Connections in the pool; 10 unless given. */
  poolSize?: number
  /**
   * How long a query waits for a connection (a new one, or a free one of the pool) before it
   * fails as the database being unavailable; 10 s unless given.
   */
  connectTimeoutMs?: number
  /**
   * Told about an error on an idle pooled connection (the server restarted, or closed it).
   * The pool drops that connection and the next query opens a new one; without a listener
   * pg would crash the process on it.
   */
  onIdleConnectionError?: (error: Error) => void
}

const DEFAULT_CONNECT_TIMEOUT_MS = 10_000
const DEFAULT_POOL_SIZE = 10
/** pg's type id of BIGINT (int8); COUNT(*) is one too. */
const INT8_OID = 20

/**
 * BIGINT columns hold sizes and epoch milliseconds, all below 2^53 (MAX_FILE_SIZE), so they
 * are parsed to numbers, as better-sqlite3 does; pg's default is a string. Set on this pool
 * only, not through the global `pg.types`, so no other pg user in the process is affected.
 */
const types: pg.CustomTypesConfig = {
  getTypeParser: ((oid: number, format?: 'text' | 'binary') =>
    oid === INT8_OID && format !== 'binary'
      ? (value: string) => Number.parseInt(value, 10)
      : pg.types.getTypeParser(oid, format)) as pg.CustomTypesConfig['getTypeParser'],
}

/** Connects to PostgreSQL, migrates the schema, and answers the store on it. */
export async function openPostgresMetadataStore(
  options: PostgresMetadataStoreOptions,
): Promise<MetadataStore> {
  const pool = new pg.Pool({
    connectionString: options.url,
    max: options.poolSize ?? DEFAULT_POOL_SIZE,
    // A database host that drops packets instead of refusing them would otherwise leave every
    // request waiting for a connection forever; this way they answer 503 and /readyz says why.
    connectionTimeoutMillis: options.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS,
    types,
  })
  const onConnectionError = options.onIdleConnectionError ?? (() => {})
  pool.on('error', onConnectionError)
  // A connection lost while checked out (mid-query, the database went away) fails its query,
  // and pg also emits 'error' on the client, where the pool listens only while it is idle:
  // unheard, that would crash the process instead of the request answering 503.
  pool.on('connect', (client) => client.on('error', onConnectionError))
  const db = new Kysely<Database>({ dialect: new PostgresDialect({ pool }) })
  return openMigrated(db, 'postgres')
}

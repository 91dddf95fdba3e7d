import { Kysely, PostgresDialect } from 'kysely'
import pg from 'pg'
import type { MetadataStore } from '../../ports/metadata-store.js'
import { migrateToLatest } from '../sql/migrations/index.js'
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
   * How long a query waits for its answer on an open connection before it fails as the database
   * being unavailable, and that connection is dropped; 60 s unless given. Migrations have none.
   */
  queryTimeoutMs?: number
  /**
   * Told about an error on an idle pooled connection (the server restarted, or closed it).
   * The pool drops that connection and the next query opens a new one; without a listener
   * pg would crash the process on it.
   */
  onIdleConnectionError?: (error: Error) => void
}

const DEFAULT_CONNECT_TIMEOUT_MS = 10_000
const DEFAULT_QUERY_TIMEOUT_MS = 60_000
/**
 * When the kernel starts probing an idle pooled connection: a peer gone without a word (a host
 * that rebooted, a NAT that forgot the flow) then ends the connection instead of holding it.
 */
const KEEPALIVE_DELAY_MS = 30_000
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
  const connection = {
    connectionString: options.url,
    // A database host that drops packets instead of refusing them would otherwise leave every
    // request waiting for a connection forever; this way they answer 503 and /readyz says why.
    connectionTimeoutMillis: options.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS,
    keepAlive: true,
    keepAliveInitialDelayMillis: KEEPALIVE_DELAY_MS,
    types,
  }
  // Migrations run first, on a connection of their own without a query timeout: rewriting a
  // large table may rightly take longer than any request should wait.
  await migrateAlone(connection)
  const pool = new pg.Pool({
    ...connection,
    max: options.poolSize ?? DEFAULT_POOL_SIZE,
    // The same host, once a connection is open: a query sent into the void would wait forever.
    query_timeout: options.queryTimeoutMs ?? DEFAULT_QUERY_TIMEOUT_MS,
  })
  const onConnectionError = options.onIdleConnectionError ?? (() => {})
  pool.on('error', onConnectionError)
  pool.on('connect', (client) => {
    // A connection lost while checked out (mid-query, the database went away) fails its query,
    // and pg also emits 'error' on the client, where the pool listens only while it is idle:
    // unheard, that would crash the process instead of the request answering 503.
    client.on('error', onConnectionError)
    dropOnQueryTimeout(client)
  })
  const db = new Kysely<Database>({ dialect: new PostgresDialect({ pool }) })
  return openMigrated(db, 'postgres')
}

async function migrateAlone(connection: pg.PoolConfig): Promise<void> {
  const db = new Kysely<Database>({
    dialect: new PostgresDialect({ pool: new pg.Pool({ ...connection, max: 1 }) }),
  })
  try {
    await migrateToLatest(db as Kysely<unknown>, 'postgres')
  } finally {
    await db.destroy()
  }
}

/**
 * pg fails a query that timed out but keeps its connection, whose answer may still arrive: the
 * pool would hand it out again and the next query would wait behind the lost one. The
 * connection is closed instead, so the pool drops it when it comes back and opens a new one.
 */
function dropOnQueryTimeout(client: pg.PoolClient): void {
  const query = client.query.bind(client) as (...args: unknown[]) => unknown
  client.query = ((...args: unknown[]) => {
    const result = query(...args)
    if (result instanceof Promise) {
      result.catch((error: unknown) => {
        if (error instanceof Error && error.message === QUERY_TIMEOUT_MESSAGE) streamOf(client)?.destroy()
      })
    }
    return result
  }) as typeof client.query
}

/** pg's wording for a query past `query_timeout`. */
const QUERY_TIMEOUT_MESSAGE = 'Query read timeout'

/** The client's socket: not in pg's types, but what its own pipeline mode destroys on a timeout. */
const streamOf = (client: pg.PoolClient) =>
  (client as unknown as { connection?: { stream?: { destroy(): void } } }).connection?.stream

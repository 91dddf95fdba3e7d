import pg from 'pg'

/**
 * Administration of the PostgreSQL test databases, shared by global setup (main process)
 * and databases.ts (test workers).
 *
 * Names carry a run id (`<pid>_<start time>`, base 36) so that several vitest runs on one
 * server (engineers testing in parallel) never drop each other's databases:
 *   tessera_tpl_<run>               the template, migrated once per run by global setup
 *   tessera_test_<run>_<worker>_<n> one clone per openTestMetadataStore / createTestDatabase
 */
export const DEFAULT_TEST_DATABASE_URL = 'postgres://postgres@127.0.0.1:5432/test'
const NAME_PREFIX = 'tessera_'
const TEST_NAME = /^tessera_(?:tpl|test)_([0-9a-z]+)_([0-9a-z]+)(?:_|$)/
/** A leftover of a run that died without teardown is dropped once this old and its process is gone. */
const STALE_AFTER_MS = 3600_000

export const baseUrl = (env: Record<string, string | undefined> = process.env): string =>
  env.TEST_DATABASE_URL || DEFAULT_TEST_DATABASE_URL

export const newRunId = (): string => `${process.pid.toString(36)}_${Date.now().toString(36)}`
export const templateName = (runId: string): string => `${NAME_PREFIX}tpl_${runId}`
export const testDatabasePrefix = (runId: string): string => `${NAME_PREFIX}test_${runId}_`

/** The same server and credentials as `url`, another database. */
export function databaseUrl(url: string, database: string): string {
  const parsed = new URL(url)
  parsed.pathname = `/${database}`
  return parsed.toString()
}

/** Runs statements on one short-lived connection to the base database. */
export async function withAdminClient<T>(url: string, work: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 3000 })
  client.on('error', () => {})
  await client.connect()
  try {
    return await work(client)
  } finally {
    await client.end()
  }
}

export const quoteIdent = (name: string): string => `"${name.replaceAll('"', '""')}"`

/**
 * Creates a test database (a clone of `template` if given) that commits without waiting for
 * the WAL flush: a crash of the test server may lose the last commits, which no test needs,
 * and every commit stops costing an fsync. Set per database, since a clone does not inherit
 * its template's settings; production databases are never created here.
 */
export async function createTestDatabaseNamed(
  client: pg.Client,
  name: string,
  template?: string,
): Promise<void> {
  const from = template === undefined ? '' : ` template ${quoteIdent(template)}`
  await client.query(`create database ${quoteIdent(name)}${from}`)
  await client.query(`alter database ${quoteIdent(name)} set synchronous_commit = off`)
}

export async function dropDatabase(client: pg.Client, name: string): Promise<void> {
  // WITH (FORCE) (PostgreSQL 13+): a pool a test forgot to close does not block the drop.
  await client.query(`drop database if exists ${quoteIdent(name)} with (force)`)
}

/** Drops every database of this run (prefix match) and every stale one of dead runs. */
export async function dropRunDatabases(client: pg.Client, runId: string | null): Promise<string[]> {
  const { rows } = await client.query<{ datname: string }>(
    `select datname from pg_database where datname like 'tessera\\_%'`,
  )
  const ours = (name: string) =>
    runId !== null && (name === templateName(runId) || name.startsWith(testDatabasePrefix(runId)))
  const dropped: string[] = []
  for (const { datname } of rows) {
    if (ours(datname) || isStale(datname)) {
      await dropDatabase(client, datname)
      dropped.push(datname)
    }
  }
  return dropped
}

function isStale(name: string): boolean {
  const match = TEST_NAME.exec(name)
  if (!match) return false
  const pid = Number.parseInt(match[1]!, 36)
  const startedAt = Number.parseInt(match[2]!, 36)
  return Date.now() - startedAt > STALE_AFTER_MS && !processAlive(pid)
}

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch (error) {
    // EPERM: it exists, under another user.
    return (error as NodeJS.ErrnoException).code === 'EPERM'
  }
}

// Throwaway PostgreSQL databases for the benchmarks. The admin connection is a copy of the few
// lines of test/helpers/postgres-admin.ts the benchmarks need: bench/ does not import from test/,
// and those lines are not worth a shared module of their own.
import { randomBytes } from 'node:crypto'
import pg from 'pg'

/** Where the benchmark creates its throwaway database (the server's `postgres` database). */
export const DEFAULT_ADMIN_URL = 'postgres://postgres@127.0.0.1:5432/postgres'

/** Runs statements on one short-lived connection to the admin database. */
async function withAdminClient<T>(url: string, work: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 3000 })
  client.on('error', () => {})
  await client.connect()
  try {
    return await work(client)
  } finally {
    await client.end()
  }
}

export interface BenchDatabase {
  name: string
  url: string
  drop(): Promise<void>
}

/** Creates `tessera_bench_<random>` on the server of `adminUrl`; throws when unreachable. */
export async function createBenchDatabase(adminUrl: string): Promise<BenchDatabase> {
  const name = `tessera_bench_${randomBytes(6).toString('hex')}`
  await withAdminClient(adminUrl, (client) => client.query(`create database "${name}"`))
  const url = new URL(adminUrl)
  url.pathname = `/${name}`
  let dropped = false
  return {
    name,
    url: url.toString(),
    async drop() {
      if (dropped) return
      dropped = true
      // WITH (FORCE), PostgreSQL 13+: a connection the server left open does not block it.
      await withAdminClient(adminUrl, (client) =>
        client.query(`drop database if exists "${name}" with (force)`),
      )
    },
  }
}

/** Why PostgreSQL at `adminUrl` cannot be used (it does not answer), or undefined when it can. */
export async function postgresUnreachable(adminUrl: string): Promise<string | undefined> {
  try {
    await withAdminClient(adminUrl, (client) => client.query('select 1'))
    return undefined
  } catch (error) {
    return `PostgreSQL unreachable at ${adminUrl}: ${(error as Error).message}`
  }
}

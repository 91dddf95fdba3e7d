import { randomBytes } from 'node:crypto'
import { withAdminClient } from '../../test/helpers/postgres-admin.js'

/** Where the benchmark creates its throwaway database (the server's `postgres` database). */
export const DEFAULT_ADMIN_URL = 'postgres://postgres@127.0.0.1:5432/postgres'

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

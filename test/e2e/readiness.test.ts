import { sql } from 'kysely'
import { afterEach, describe, expect, it } from 'vitest'
import { REQUEST_TABLES } from '../../src/adapters/sql/request-schema.js'
import { DATABASES } from '../helpers/databases.js'
import { databaseOf } from '../helpers/plain-requests.js'
import { startTestServer, type TestServer } from '../helpers/test-server.js'

/**
 * /readyz checks what requests need, and tells anonymous callers only which check failed: the
 * probe's message (internal hosts and ports) goes to the log and /metrics has a gauge (issue 10).
 */
describe.each(DATABASES)('readiness on %s', ({ name: backend, available }) => {
  let server: TestServer | undefined
  afterEach(async () => {
    await server?.stop()
    server = undefined
  })

  it.skipIf(!available)('names a failing check without its message; /metrics has the gauge', async () => {
    server = await startTestServer(backend)
    const ok = await fetch(`${server.url}/metrics`)
    expect(await ok.text()).toMatch(/^tessera_ready\{check="metadata"\} 1$/m)

    server.services.meta.ping = async () => {
      throw new Error('connect ECONNREFUSED 10.20.30.40:6432')
    }
    const ready = await fetch(`${server.url}/readyz`)
    expect(ready.status).toBe(503)
    const text = await ready.text()
    expect(text).not.toContain('10.20.30.40')
    expect(text).not.toContain('6432')
    expect(JSON.parse(text)).toEqual({
      status: 'not ready',
      checks: { metadata: 'error', blobs: 'ok', bus: 'ok' },
    })
    const metrics = await (await fetch(`${server.url}/metrics`)).text()
    expect(metrics).toMatch(/^tessera_ready\{check="metadata"\} 0$/m)
    expect(metrics).toMatch(/^tessera_ready\{check="blobs"\} 1$/m)
  })

  it.skipIf(!available)(
    'answers /metrics while the database fails, with the rest of the figures',
    async () => {
      server = await startTestServer(backend)
      const failing = async (): Promise<never> => {
        throw new Error('Connection terminated unexpectedly')
      }
      server.services.meta.ping = failing
      server.services.meta.audit.countDamaged = failing
      const metrics = await fetch(`${server.url}/metrics`)
      expect(metrics.status).toBe(200)
      const text = await metrics.text()
      expect(text).toMatch(/^tessera_ready\{check="metadata"\} 0$/m)
      expect(text).toMatch(/^tessera_ready\{check="blobs"\} 1$/m)
      expect(text).toContain('tessera_chunk_damage_detected_total')
    },
  )

  it.skipIf(!available)('is not ready when a table requests use is gone', async () => {
    server = await startTestServer(backend)
    expect((await fetch(`${server.url}/readyz`)).status).toBe(200)
    // (CASCADE on PostgreSQL drops what refers to it; SQLite has no such clause and needs none.)
    const cascade = backend === 'postgres' ? sql` cascade` : sql``
    await sql`drop table share_links${cascade}`.execute(databaseOf(server))
    const ready = await fetch(`${server.url}/readyz`)
    expect(ready.status).toBe(503)
    expect(((await ready.json()) as { checks: Record<string, string> }).checks.metadata).toBe('error')
  })

  it.skipIf(!available)('is not ready when a table added by a later migration is renamed', async () => {
    server = await startTestServer(backend)
    expect((await fetch(`${server.url}/readyz`)).status).toBe(200)
    await sql`alter table share_link_attempts rename to share_link_attempts_old`.execute(databaseOf(server))
    const ready = await fetch(`${server.url}/readyz`)
    expect(ready.status).toBe(503)
    expect(((await ready.json()) as { checks: Record<string, string> }).checks.metadata).toBe('error')
  })

  it.skipIf(!available)('is not ready when a column requests use is renamed', async () => {
    server = await startTestServer(backend)
    expect((await fetch(`${server.url}/readyz`)).status).toBe(200)
    await sql`alter table nodes rename column name to old_name`.execute(databaseOf(server))
    const ready = await fetch(`${server.url}/readyz`)
    expect(ready.status).toBe(503)
    expect(((await ready.json()) as { checks: Record<string, string> }).checks.metadata).toBe('error')
  })

  it.skipIf(!available)('checks every table and column the migrations make', async () => {
    server = await startTestServer(backend)
    const db = databaseOf(server)
    const found =
      backend === 'postgres'
        ? (
            await sql<{ table: string; column: string }>`
              select table_name as "table", column_name as "column" from information_schema.columns
              where table_schema = current_schema()`.execute(db)
          ).rows
        : (
            await sql<{ table: string; column: string }>`
              select m.name as "table", p.name as "column"
              from sqlite_master m, pragma_table_info(m.name) p
              where m.type = 'table' and m.name not like 'sqlite_%'`.execute(db)
          ).rows
    const columnsOf = (rows: Array<{ table: string; column: string }>) =>
      Object.fromEntries(
        [...new Set(rows.map((row) => row.table))]
          .filter((table) => !table.startsWith('kysely_migration'))
          .sort()
          .map((table) => [
            table,
            rows
              .filter((row) => row.table === table)
              .map((row) => row.column)
              .sort(),
          ]),
      )
    const checked = REQUEST_TABLES.flatMap(({ table, columns }) =>
      columns.map((column) => ({ table, column })),
    )
    expect(columnsOf(checked)).toEqual(columnsOf(found))
  })

  it.skipIf(!available || backend !== 'postgres')('is not ready when the whole schema is gone', async () => {
    server = await startTestServer(backend)
    await sql`drop schema public cascade`.execute(databaseOf(server))
    const ready = await fetch(`${server.url}/readyz`)
    expect(ready.status).toBe(503)
    expect(((await ready.json()) as { checks: Record<string, string> }).checks.metadata).toBe('error')
  })
})

import { sql } from 'kysely'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { migrations } from '../../src/adapters/sql/migrations/index.js'
import { runMigrations } from '../../src/adapters/sql/migrations/runner.js'
import { DATABASES } from '../helpers/databases.js'
import { createEmptyDatabase, type EmptyDatabase } from '../helpers/empty-databases.js'

const LAST_DATE_MS = 8.64e15

/**
 * Migration 0012 on links saved before expiresAt was checked: an expiry past the last date a
 * Date holds becomes no expiry, a fraction of a millisecond (SQLite kept it) is dropped, and
 * the owner's links list again.
 */
for (const { name: kind, available } of DATABASES) {
  describe.skipIf(!available)(`migration 0012 on ${kind}`, () => {
    let database: EmptyDatabase

    beforeEach(async () => {
      database = await createEmptyDatabase(kind)
    })
    afterEach(async () => {
      await database.cleanup()
    })

    it('repairs expiries no date can hold, and the links list again', async () => {
      const db = database.connect()
      const released = migrations(kind)
      await runMigrations(db, kind, Object.fromEntries(Object.entries(released).filter(([n]) => n < '0012')))
      const at = Date.now()
      await db
        .insertInto('users')
        .values({
          id: 'u',
          email: 'u@example.test',
          password_hash: 'x',
          quota_bytes: 1000,
          root_folder_id: 'root',
          created_at: at,
        })
        .execute()
      const node = (id: string, parentId: string | null) => ({
        id,
        owner_id: 'u',
        parent_id: parentId,
        kind: 'folder' as const,
        name: id,
        name_key: id,
        current_version: null,
        created_at: at,
        updated_at: at,
        deleted_at: null,
        trash_root_id: null,
      })
      await db
        .insertInto('nodes')
        .values([node('root', null), node('docs', 'root')])
        .execute()
      // PostgreSQL refused 1e300 and fractions at the time (bigint); SQLite stored them as REAL.
      const expiries: Record<string, number> = {
        far: LAST_DATE_MS + 1,
        past: -LAST_DATE_MS - 1,
        fine: at + 3_600_000,
        ...(kind === 'sqlite' ? { huge: 1e300, fraction: at + 3_600_000.5 } : {}),
      }
      await db
        .insertInto('share_links')
        .values(
          Object.entries(expiries).map(([id, expiresAt]) => ({
            id,
            token: id,
            token_hash: `hash-${id}`,
            owner_id: 'u',
            node_id: 'docs',
            password_hash: null,
            expires_at: expiresAt,
            created_at: at,
            revoked_at: null,
          })),
        )
        .execute()

      expect(await runMigrations(db, kind, released)).toContain('0012_repair_link_expiries')
      const { rows } = await sql<{ id: string; expires_at: number | string | null }>`
        select id, expires_at from share_links order by id`.execute(db)
      const after = Object.fromEntries(
        rows.map((row) => [row.id, row.expires_at === null ? null : Number(row.expires_at)]),
      )
      expect(after).toEqual({
        far: null,
        past: null,
        fine: at + 3_600_000,
        ...(kind === 'sqlite' ? { huge: null, fraction: at + 3_600_000 } : {}),
      })
      // What broke the listing: every expiry left is a date.
      const store = await database.openStore()
      const links = await store.sharing.linksOf('u')
      expect(links).toHaveLength(Object.keys(expiries).length)
      for (const { link } of links) {
        if (link.expiresAt !== null) expect(new Date(link.expiresAt).toISOString()).toBeTypeOf('string')
      }
    })
  })
}

import { sql } from 'kysely'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { migrations } from '../../src/adapters/sql/migrations/index.js'
import { runMigrations } from '../../src/adapters/sql/migrations/runner.js'
import { loadConfig } from '../../src/config.js'
import { VersionHistory } from '../../src/services/version-history.js'
import { DATABASES } from '../helpers/databases.js'
import {
  createEmptyDatabase,
  type EmptyDatabase,
  indexNames,
  tableNames,
} from '../helpers/empty-databases.js'

const DAY = 86_400_000

/**
 * Migration 0009 on a store written before it: every file with more than one version is due
 * (0), every other node has no due time; so the first sweep visits each file with history once.
 */
for (const { name: kind, available } of DATABASES) {
  describe.skipIf(!available)(`migration 0009 on ${kind}`, () => {
    let database: EmptyDatabase

    beforeEach(async () => {
      database = await createEmptyDatabase(kind)
    })
    afterEach(async () => {
      await database.cleanup()
    })

    it('makes every file with history due once, and nothing else', async () => {
      const db = database.connect()
      const released = migrations(kind)
      const before0009 = Object.fromEntries(Object.entries(released).filter(([name]) => name < '0009'))
      await runMigrations(db, kind, before0009)
      const at = Date.now() - DAY
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
      const node = (
        id: string,
        kindOf: 'file' | 'folder',
        parentId: string | null,
        deletedAt: number | null = null,
      ) => ({
        id,
        owner_id: 'u',
        parent_id: parentId,
        kind: kindOf,
        name: id,
        name_key: id,
        current_version: kindOf === 'file' ? 2 : null,
        created_at: at,
        updated_at: at,
        deleted_at: deletedAt,
        trash_root_id: deletedAt === null ? null : id,
      })
      await db
        .insertInto('nodes')
        .values([
          node('root', 'folder', null),
          node('one', 'file', 'root'),
          node('two', 'file', 'root'),
          node('trashed', 'file', 'root', at),
          node('empty', 'file', 'root'),
        ])
        .execute()
      const version = (nodeId: string, number: number) => ({
        id: `${nodeId}-v${number}`,
        node_id: nodeId,
        version: number,
        size: 1,
        content_hash: 'e'.repeat(64),
        author_id: 'u',
        created_at: at + number,
      })
      await db
        .insertInto('versions')
        .values([
          version('one', 2),
          version('two', 1),
          version('two', 2),
          version('trashed', 1),
          version('trashed', 2),
        ])
        .execute()

      expect(await runMigrations(db, kind, released)).toContain('0009_history_due_and_leases')
      const { rows } = await sql<{ id: string; history_due_at: number | string | null }>`
        select id, history_due_at from nodes order by id`.execute(db)
      expect(
        rows.map((row) => [row.id, row.history_due_at === null ? null : Number(row.history_due_at)]),
      ).toEqual([
        ['empty', null],
        ['one', null],
        ['root', null],
        ['trashed', 0],
        ['two', 0],
      ])
      expect(await tableNames(db)).toEqual(expect.arrayContaining(['leases', 'settings']))
      expect(await indexNames(db, kind)).toContain('nodes_history_due_idx')

      // The first sweep finds each due file once and computes its real due time.
      const store = await database.openStore()
      const history = new VersionHistory(store, loadConfig({}).versions)
      expect(await history.sweep(Date.now())).toEqual({ visited: 2, pruned: 0, policyChanged: true })
      expect(await history.sweep(Date.now())).toEqual({ visited: 0, pruned: 0, policyChanged: false })
      // Version 1 of each was made at `at + 1`: it ages out 30 days and 1 ms later.
      expect(await store.versions.historyDue(at + 30 * DAY + 1, null, 10)).toEqual([])
      expect(await store.versions.historyDue(at + 30 * DAY + 2, null, 10)).toHaveLength(2)
    })
  })
}

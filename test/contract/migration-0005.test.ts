import { sql } from 'kysely'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { migrations } from '../../src/adapters/sql/migrations/index.js'
import { runMigrations } from '../../src/adapters/sql/migrations/runner.js'
import { DATABASES } from '../helpers/databases.js'
import { createEmptyDatabase, type EmptyDatabase, indexNames } from '../helpers/empty-databases.js'

const NFD_ETE = 'e\u0301te\u0301'
const NFC_ETE_CAPITAL = '\u00c9t\u00e9'
const LONG_STEM = 250

/**
 * Migration 0005 on names written before it, with the outcome spelled out rather than
 * computed by domain code: a released migration must keep doing exactly this, whatever
 * domain/names.ts and domain/conflicted-name.ts become.
 */
for (const { name: kind, available } of DATABASES) {
  describe.skipIf(!available)(`migration 0005 on ${kind}`, () => {
    let database: EmptyDatabase

    beforeEach(async () => {
      database = await createEmptyDatabase(kind)
    })
    afterEach(async () => {
      await database.cleanup()
    })

    it('renames live siblings that collide case-insensitively, oldest first, as when released', async () => {
      const db = database.connect()
      const released = migrations(kind)
      const upTo0004 = Object.fromEntries(Object.entries(released).filter(([name]) => name < '0005'))
      await runMigrations(db, kind, upTo0004)
      const at = (
        createdAt: number,
        id: string,
        parentId: string | null,
        name: string,
        deletedAt?: number,
      ) => ({
        id,
        owner_id: 'u',
        parent_id: parentId,
        kind: 'file',
        name,
        created_at: createdAt,
        updated_at: createdAt,
        deleted_at: deletedAt ?? null,
      })
      await db
        .insertInto('nodes')
        .values([
          { ...at(0, 'root', null, ''), kind: 'folder' },
          { ...at(0, 'other', 'root', 'other'), kind: 'folder' },
          at(1, 'n01', 'root', 'Readme.txt'),
          at(2, 'n02', 'root', 'README.txt'),
          at(3, 'n03', 'root', 'readme.TXT'),
          at(4, 'n04', 'root', NFD_ETE),
          at(5, 'n05', 'root', NFC_ETE_CAPITAL),
          at(6, 'n06', 'root', 'readme.txt', 100),
          at(7, 'n07', 'root', `${'a'.repeat(LONG_STEM)}.txt`),
          at(8, 'n08', 'root', `${'A'.repeat(LONG_STEM)}.txt`),
          { ...at(9, 'n09', 'root', 'Notes'), kind: 'folder' },
          at(10, 'n10', 'root', 'notes'),
          at(1, 'n11', 'other', 'README.txt'),
          at(11, 'n12', 'root', '.Profile'),
          at(12, 'n13', 'root', '.profile'),
          // A rename lands on a name a later sibling holds until its own rename.
          at(13, 'n14', 'root', 'b'),
          at(14, 'n15', 'root', 'B'),
          at(15, 'n16', 'root', 'B (case conflict)'),
        ])
        .execute()

      expect(await runMigrations(db, kind, released)).toContain('0005_case_insensitive_names')

      const { rows } = await sql<{ id: string; name: string; name_key: string }>`
        select id, name, name_key from nodes order by id`.execute(db)
      const truncated = 255 - ' (case conflict).txt'.length
      expect(rows).toEqual([
        { id: 'n01', name: 'Readme.txt', name_key: 'readme.txt' },
        { id: 'n02', name: 'README (case conflict).txt', name_key: 'readme (case conflict).txt' },
        { id: 'n03', name: 'readme (case conflict 2).TXT', name_key: 'readme (case conflict 2).txt' },
        // The name keeps its form; only the key is NFC.
        { id: 'n04', name: NFD_ETE, name_key: '\u00e9t\u00e9' },
        { id: 'n05', name: `${NFC_ETE_CAPITAL} (case conflict)`, name_key: '\u00e9t\u00e9 (case conflict)' },
        // Trashed: neither blocks nor is renamed.
        { id: 'n06', name: 'readme.txt', name_key: 'readme.txt' },
        { id: 'n07', name: `${'a'.repeat(LONG_STEM)}.txt`, name_key: `${'a'.repeat(LONG_STEM)}.txt` },
        // The stem is cut so that the name stays within 255 bytes; the extension stays.
        {
          id: 'n08',
          name: `${'A'.repeat(truncated)} (case conflict).txt`,
          name_key: `${'a'.repeat(truncated)} (case conflict).txt`,
        },
        { id: 'n09', name: 'Notes', name_key: 'notes' },
        { id: 'n10', name: 'notes (case conflict)', name_key: 'notes (case conflict)' },
        // Another folder: no collision.
        { id: 'n11', name: 'README.txt', name_key: 'readme.txt' },
        // A leading dot starts no extension.
        { id: 'n12', name: '.Profile', name_key: '.profile' },
        { id: 'n13', name: '.profile (case conflict)', name_key: '.profile (case conflict)' },
        { id: 'n14', name: 'b', name_key: 'b' },
        { id: 'n15', name: 'B (case conflict)', name_key: 'b (case conflict)' },
        {
          id: 'n16',
          name: 'B (case conflict) (case conflict)',
          name_key: 'b (case conflict) (case conflict)',
        },
        { id: 'other', name: 'other', name_key: 'other' },
        { id: 'root', name: '', name_key: '' },
      ])
      const indexes = await indexNames(db, kind)
      expect(indexes).toContain('nodes_live_name_key_ci')
      expect(indexes).not.toContain('nodes_live_name_key')
    })
  })
}

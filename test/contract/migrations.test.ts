import { type Migration, Migrator, sql } from 'kysely'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { migrations } from '../../src/adapters/sql/migrations/index.js'
import { runMigrations } from '../../src/adapters/sql/migrations/runner.js'
import { DATABASES, postgresAvailable } from '../helpers/databases.js'
import {
  type AnyDb,
  columnNames,
  createEmptyDatabase,
  type EmptyDatabase,
  indexNames,
  recordedMigrations,
  tableNames,
} from '../helpers/empty-databases.js'

type MigrationList = Record<string, Migration>

/** Each migration of `list`, telling `calls` its name when it runs. */
function spied(list: MigrationList, calls: string[]): MigrationList {
  return Object.fromEntries(
    Object.entries(list).map(([name, migration]) => [
      name,
      {
        up: async (db: AnyDb) => {
          calls.push(name)
          await migration.up(db)
        },
      },
    ]),
  )
}

/** The released migrations but the last: a database one release behind. */
function allButLast(list: MigrationList): MigrationList {
  const last = Object.keys(list).sort().at(-1)!
  const { [last]: _, ...rest } = list
  return rest
}

const boom = (): never => {
  throw new Error('boom')
}

for (const { name: kind, available } of DATABASES) {
  describe.skipIf(!available)(`migrations on ${kind}`, () => {
    const released = migrations(kind)
    const releasedNames = Object.keys(released).sort()
    let database: EmptyDatabase
    let db: AnyDb

    beforeEach(async () => {
      database = await createEmptyDatabase(kind)
      db = database.connect()
    })
    afterEach(async () => {
      await database.cleanup()
    })

    it('rolls a failing migration back whole, and the database still opens and migrates', async () => {
      await runMigrations(db, kind, allButLast(released))
      await sql`create table scratch (id text primary key, value text not null)`.execute(db)
      await sql`insert into scratch (id, value) values ('a', 'one'), ('b', 'two')`.execute(db)
      const failing: Migration = {
        async up(trx) {
          await sql`alter table scratch add column note text`.execute(trx)
          await sql`update scratch set value = 'changed', note = 'x'`.execute(trx)
          await sql`create index scratch_note_idx on scratch (note)`.execute(trx)
          boom()
        },
      }

      await expect(
        runMigrations(db, kind, { ...allButLast(released), '9000_fails': failing }),
      ).rejects.toThrow(/migration 9000_fails failed: Error: boom/)

      expect(await columnNames(db, 'scratch')).toEqual(['id', 'value'])
      const { rows } = await sql`select id, value from scratch order by id`.execute(db)
      expect(rows).toEqual([
        { id: 'a', value: 'one' },
        { id: 'b', value: 'two' },
      ])
      expect(await indexNames(db, kind)).not.toContain('scratch_note_idx')
      expect(await recordedMigrations(db)).toEqual(Object.keys(allButLast(released)).sort())

      // The server's own start brings it to the latest release.
      const store = await database.openStore()
      await store.ping()
      expect(await recordedMigrations(db)).toEqual(releasedNames)
    })

    it('commits each migration on its own, and applies a failed one once it is fixed', async () => {
      const addsTable: Migration = {
        async up(trx) {
          await trx.schema
            .createTable('kept')
            .addColumn('id', 'text', (c) => c.primaryKey())
            .execute()
        },
      }
      const addsColumn: Migration = {
        async up(trx) {
          await trx.schema.alterTable('kept').addColumn('note', 'text').execute()
        },
      }
      const addsColumnThenFails: Migration = {
        async up(trx) {
          await addsColumn.up(trx)
          boom()
        },
      }
      const withLater = (later: Migration) => ({
        ...released,
        '9000_adds_table': addsTable,
        '9001_adds_column': later,
      })

      await expect(runMigrations(db, kind, withLater(addsColumnThenFails))).rejects.toThrow(
        /9001_adds_column/,
      )
      expect(await recordedMigrations(db)).toEqual([...releasedNames, '9000_adds_table'])
      expect(await columnNames(db, 'kept')).toEqual(['id'])

      expect(await runMigrations(db, kind, withLater(addsColumn))).toEqual(['9001_adds_column'])
      expect(await columnNames(db, 'kept')).toEqual(['id', 'note'])
      expect(await recordedMigrations(db)).toEqual([...releasedNames, '9000_adds_table', '9001_adds_column'])
    })

    it('runs migrations in name order, and never a recorded one again, across restarts', async () => {
      const calls: string[] = []
      const reversed = Object.fromEntries(Object.entries(released).reverse())
      expect(await runMigrations(db, kind, spied(reversed, calls))).toEqual(releasedNames)
      expect(calls).toEqual(releasedNames)

      calls.length = 0
      expect(await runMigrations(db, kind, spied(released, calls))).toEqual([])
      expect(await runMigrations(database.connect(), kind, spied(released, calls))).toEqual([])
      expect(calls).toEqual([])
      await (await database.openStore()).ping()
      expect(await recordedMigrations(db)).toEqual(releasedNames)
    })

    it("takes over a database migrated by Kysely's Migrator, re-running nothing", async () => {
      const behind = allButLast(released)
      const provider = { getMigrations: async () => behind }
      const { error } = await new Migrator({ db, provider }).migrateToLatest()
      expect(error).toBeUndefined()

      const calls: string[] = []
      const last = releasedNames.at(-1)!
      expect(await runMigrations(db, kind, spied(released, calls))).toEqual([last])
      expect(calls).toEqual([last])
      expect(await recordedMigrations(db)).toEqual(releasedNames)
      // Its lock table is left as it was.
      expect(await tableNames(db)).toContain('kysely_migration_lock')
      await (await database.openStore()).ping()
    })

    it('refuses a database migrated by a newer version, and a new migration that sorts too early', async () => {
      await runMigrations(db, kind, { ...released, '9000_newer': { up: async () => {} } })
      await expect(runMigrations(db, kind, released)).rejects.toThrow(/does not know \(9000_newer\)/)
      await expect(
        runMigrations(db, kind, {
          ...released,
          '9000_newer': { up: async () => {} },
          '0000_early': { up: boom },
        }),
      ).rejects.toThrow(/0000_early sorts before/)
    })
  })
}

describe.skipIf(!postgresAvailable())('migrations on postgres, several nodes at once', () => {
  let database: EmptyDatabase

  beforeEach(async () => {
    database = await createEmptyDatabase('postgres')
  })
  afterEach(async () => {
    await database.cleanup()
  })

  /** Nodes starting together on one database; every migration logs itself in its transaction. */
  async function startTogether(
    nodes: number,
  ): Promise<{ applied: string[][]; logged: string[]; names: string[] }> {
    const setup = database.connect()
    await sql`create table if not exists applied (name text not null)`.execute(setup)
    const logging = (list: Record<string, Migration>): Record<string, Migration> =>
      Object.fromEntries(
        Object.entries(list).map(([name, migration]) => [
          name,
          {
            async up(trx: AnyDb) {
              await sql`insert into applied (name) values (${name})`.execute(trx)
              await migration.up(trx)
            },
          },
        ]),
      )
    const slow: Migration = {
      async up(trx) {
        await sql`select pg_sleep(0.3)`.execute(trx)
      },
    }
    const list = logging({ ...migrations('postgres'), '9000_slow': slow, '9001_slow': slow })
    const applied = await Promise.all(
      Array.from({ length: nodes }, () => runMigrations(database.connect(), 'postgres', list)),
    )
    const { rows } = await sql<{ name: string }>`select name from applied order by name`.execute(setup)
    return { applied, logged: rows.map((row) => row.name), names: Object.keys(list).sort() }
  }

  it('applies each migration exactly once when nodes start together', async () => {
    const { applied, logged, names } = await startTogether(3)
    expect(applied.flat().sort()).toEqual(names)
    expect(logged).toEqual(names)
  })

  it('does so too where transactions default to REPEATABLE READ', async () => {
    // There a transaction's snapshot would date from before it waited for the lock.
    const setup = database.connect()
    const { rows } = await sql<{ name: string }>`select current_database() as name`.execute(setup)
    await sql`alter database ${sql.id(rows[0]!.name)} set default_transaction_isolation = 'repeatable read'`.execute(
      setup,
    )
    const { applied, logged, names } = await startTogether(3)
    expect(applied.flat().sort()).toEqual(names)
    expect(logged).toEqual(names)
  })
})

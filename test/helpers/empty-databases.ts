import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import BetterSqlite3 from 'better-sqlite3'
import { Kysely, PostgresDialect, SqliteDialect, sql } from 'kysely'
import pg from 'pg'
import { openPostgresMetadataStore } from '../../src/adapters/postgres/postgres-metadata-store.js'
import { openSqliteMetadataStore } from '../../src/adapters/sqlite/sqlite-metadata-store.js'
import type { MetadataStore } from '../../src/ports/metadata-store.js'
import { createTestDatabase, type DatabaseKind } from './databases.js'

/** Migrations, and tests of them, address tables that no schema type describes. */
export type AnyDb = Kysely<any>

/** A database with nothing in it, for tests of the migrations themselves. */
export interface EmptyDatabase {
  kind: DatabaseKind
  /** A connection of its own to the database (a pool on PostgreSQL), as another process has. */
  connect(): AnyDb
  /** Opens the store on it as the server does, which migrates it to the latest version. */
  openStore(): Promise<MetadataStore>
  /** Closes every connection and store opened here, and deletes the database. */
  cleanup(): Promise<void>
}

/**
 * An empty SQLite file, or a PostgreSQL clone emptied of the migrated template's schema
 * (databases.ts clones only the template).
 */
export async function createEmptyDatabase(kind: DatabaseKind): Promise<EmptyDatabase> {
  const connections: AnyDb[] = []
  const stores: MetadataStore[] = []
  const closeAll = async () => {
    for (const store of stores.splice(0)) await store.close()
    for (const db of connections.splice(0)) await db.destroy()
  }
  if (kind === 'sqlite') {
    const directory = await mkdtemp(path.join(tmpdir(), 'tessera-migrations-'))
    const file = path.join(directory, 'tessera.db')
    return {
      kind,
      connect: () =>
        remember(
          connections,
          new Kysely({ dialect: new SqliteDialect({ database: new BetterSqlite3(file) }) }),
        ),
      openStore: async () => remember(stores, await openSqliteMetadataStore({ file })),
      async cleanup() {
        await closeAll()
        await rm(directory, { recursive: true, force: true })
      },
    }
  }
  const database = await createTestDatabase()
  const admin = new Kysely<unknown>({
    dialect: new PostgresDialect({ pool: new pg.Pool({ connectionString: database.url, max: 1 }) }),
  })
  await sql`drop schema public cascade`.execute(admin)
  await sql`create schema public`.execute(admin)
  await admin.destroy()
  return {
    kind,
    connect: () =>
      remember(
        connections,
        new Kysely({
          dialect: new PostgresDialect({ pool: new pg.Pool({ connectionString: database.url, max: 2 }) }),
        }),
      ),
    openStore: async () =>
      remember(stores, await openPostgresMetadataStore({ url: database.url, poolSize: 2 })),
    async cleanup() {
      await closeAll()
      await database.drop()
    },
  }
}

function remember<T>(list: T[], item: T): T {
  list.push(item)
  return item
}

/** The names recorded in Kysely's migration table, in name order. */
export async function recordedMigrations(db: AnyDb): Promise<string[]> {
  const { rows } = await sql<{ name: string }>`select name from kysely_migration order by name`.execute(db)
  return rows.map((row) => row.name)
}

export async function tableNames(db: AnyDb): Promise<string[]> {
  const tables = await db.introspection.getTables({ withInternalKyselyTables: true })
  return tables.map((table) => table.name).sort()
}

export async function columnNames(db: AnyDb, table: string): Promise<string[]> {
  const tables = await db.introspection.getTables()
  return (tables.find((candidate) => candidate.name === table)?.columns ?? []).map((column) => column.name)
}

/** Kysely's introspection lists no indexes, hence the catalogues. */
export async function indexNames(db: AnyDb, kind: DatabaseKind): Promise<string[]> {
  const { rows } =
    kind === 'sqlite'
      ? await sql<{ name: string }>`select name from sqlite_master where type = 'index'`.execute(db)
      : await sql<{
          name: string
        }>`select indexname as name from pg_indexes where schemaname = 'public'`.execute(db)
  return rows.map((row) => row.name).sort()
}

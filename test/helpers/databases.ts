import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { inject } from 'vitest'
import { openPostgresMetadataStore } from '../../src/adapters/postgres/postgres-metadata-store.js'
import { openSqliteMetadataStore } from '../../src/adapters/sqlite/sqlite-metadata-store.js'
import type { Config } from '../../src/config.js'
import type { MetadataStore } from '../../src/ports/metadata-store.js'
import {
  createTestDatabaseNamed,
  databaseUrl,
  dropDatabase,
  templateName,
  testDatabasePrefix,
  withAdminClient,
} from './postgres-admin.js'

import { type DatabaseKind, selectedDatabases } from './test-backends.js'

export type { DatabaseKind } from './test-backends.js'

/**
 * Whether PostgreSQL answered when the run started (global-setup.ts). Guard PostgreSQL
 * suites with `describe.skipIf(!postgresAvailable())`; global setup has already said loudly
 * that they are skipped, and under CI it fails the run instead.
 */
export const postgresAvailable = (): boolean => inject('postgresAvailable')

/** One test database of this run; prints as its name (`describe.each(DATABASES)('... on %s')`). */
export interface ListedDatabase {
  name: DatabaseKind
  /** False for PostgreSQL when it did not answer: its suites show up as skipped. */
  available: boolean
}

/**
 * The one list of test databases: every suite that runs once per database loops over it
 * (`describe.each(DATABASES)('... on %s', ({ name, available }) => ...)`). `TEST_BACKENDS`
 * leaves out the others (test-backends.ts); global setup says why PostgreSQL is unavailable.
 */
export const DATABASES: ReadonlyArray<ListedDatabase> = selectedDatabases().map((name) => ({
  name,
  available: name === 'sqlite' || postgresAvailable(),
  toString: () => name,
}))

export interface TestDatabase {
  url: string
  /** Drops the database (closing any connection left to it). */
  drop(): Promise<void>
}

let clones = 0

/**
 * A fresh, migrated, empty PostgreSQL database, cloned from this run's template. For tests
 * that start the whole server on PostgreSQL (DATABASE_URL = url).
 */
export async function createTestDatabase(): Promise<TestDatabase> {
  if (!postgresAvailable()) {
    throw new Error(
      'PostgreSQL is not available in this run: guard the suite with describe.skipIf(!postgresAvailable())',
    )
  }
  const base = inject('postgresBaseUrl')
  const runId = inject('postgresRunId')
  clones += 1
  const name = `${testDatabasePrefix(runId)}${process.pid.toString(36)}_${clones}`
  await withAdminClient(base, (client) => createTestDatabaseNamed(client, name, templateName(runId)))
  let dropped: Promise<void> | undefined
  return {
    url: databaseUrl(base, name),
    drop: () => {
      dropped ??= withAdminClient(base, (client) => dropDatabase(client, name))
      return dropped
    },
  }
}

export interface TestMetadataStore {
  store: MetadataStore
  /** Where the store is, as the server's config takes it: start a server on the same data. */
  config: Config['db']
  /** Closes the store and deletes its database. */
  cleanup(): Promise<void>
}

export interface TestMetadataStoreOptions {
  /**
   * SQLite only: the database lives in memory (`:memory:`), for unit tests, which never open a
   * second connection to it: a store or server opened on `config` sees an empty database. It
   * saves the temporary file and an fsync at every commit (the store runs synchronous=FULL).
   */
  sqliteInMemory?: boolean
}

/** A migrated, empty metadata store of its own: a temporary SQLite file or a cloned database. */
export async function openTestMetadataStore(
  kind: DatabaseKind,
  options: TestMetadataStoreOptions = {},
): Promise<TestMetadataStore> {
  if (kind === 'sqlite' && options.sqliteInMemory) {
    const file = ':memory:'
    const store = await openSqliteMetadataStore({ file })
    return { store, config: { kind: 'sqlite', file }, cleanup: () => store.close() }
  }
  if (kind === 'sqlite') {
    const directory = await mkdtemp(path.join(tmpdir(), 'tessera-test-db-'))
    const file = path.join(directory, 'tessera.db')
    const store = await openSqliteMetadataStore({ file })
    return {
      store,
      config: { kind: 'sqlite', file },
      async cleanup() {
        await store.close()
        await rm(directory, { recursive: true, force: true })
      },
    }
  }
  const database = await createTestDatabase()
  try {
    const store = await openPostgresMetadataStore({ url: database.url, poolSize: 4 })
    return {
      store,
      config: { kind: 'postgres', url: database.url, connectTimeoutMs: 10_000, queryTimeoutMs: 60_000 },
      async cleanup() {
        await store.close()
        await database.drop()
      },
    }
  } catch (error) {
    await database.drop()
    throw error
  }
}

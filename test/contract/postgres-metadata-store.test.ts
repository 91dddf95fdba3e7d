import pg from 'pg'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { openPostgresMetadataStore } from '../../src/adapters/postgres/postgres-metadata-store.js'
import type { MetadataStore } from '../../src/ports/metadata-store.js'
import { createTestDatabase, postgresAvailable, type TestDatabase } from '../helpers/databases.js'
import { withAdminClient } from '../helpers/postgres-admin.js'
import { insertUser } from './metadata-fixtures.js'

// The behaviour every store shares is in the contract; these are PostgreSQL's own concerns.
describe.skipIf(!postgresAvailable())('openPostgresMetadataStore', () => {
  let database: TestDatabase
  const stores: MetadataStore[] = []

  const open = async () => {
    const store = await openPostgresMetadataStore({ url: database.url, poolSize: 4 })
    stores.push(store)
    return store
  }

  beforeEach(async () => {
    database = await createTestDatabase()
  })
  afterEach(async () => {
    for (const store of stores.splice(0)) await store.close()
    await database.drop()
  })

  it('orders names by bytes: nodes.name is COLLATE "C"', async () => {
    await open()
    const collation = await withAdminClient(database.url, async (client) => {
      const { rows } = await client.query<{ collation_name: string | null }>(
        `select collation_name from information_schema.columns where table_name = 'nodes' and column_name = 'name'`,
      )
      return rows[0]?.collation_name
    })
    expect(collation).toBe('C')
  })

  it('migrates once when several nodes start together', async () => {
    const empty = new pg.Client({ connectionString: database.url })
    await empty.connect()
    await empty.query('drop schema public cascade; create schema public')
    await empty.end()
    const [first] = await Promise.all([open(), open(), open()])
    const user = await insertUser(first!)
    expect(await first!.users.findById(user.id)).toEqual(user)
  })

  it('serialises transactions that lock the same tree', async () => {
    const store = await open()
    const user = await insertUser(store)
    const events: string[] = []
    let releaseFirst!: () => void
    const firstMayEnd = new Promise<void>((resolve) => {
      releaseFirst = resolve
    })
    let firstLocked!: () => void
    const firstHasLock = new Promise<void>((resolve) => {
      firstLocked = resolve
    })
    const first = store.transaction(async (tx) => {
      await tx.users.lockTree(user.id)
      events.push('first locked')
      firstLocked()
      await firstMayEnd
      events.push('first ends')
    })
    await firstHasLock
    const second = store.transaction(async (tx) => {
      await tx.users.lockTree(user.id)
      events.push('second locked')
    })
    await new Promise((resolve) => setTimeout(resolve, 200))
    releaseFirst()
    await Promise.all([first, second])
    expect(events).toEqual(['first locked', 'first ends', 'second locked'])
  })
})

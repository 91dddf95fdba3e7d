import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import BetterSqlite3 from 'better-sqlite3'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { insertUser } from '../../../test/contract/metadata-fixtures.js'
import { openSqliteMetadataStore } from './sqlite-metadata-store.js'

// The behaviour every store shares is in test/contract; these are SQLite's own concerns.
describe('openSqliteMetadataStore', () => {
  let directory: string

  beforeEach(async () => {
    directory = await mkdtemp(path.join(tmpdir(), 'tessera-sqlite-'))
  })
  afterEach(async () => {
    await rm(directory, { recursive: true, force: true })
  })

  it('creates the directory, and keeps data across a reopen (migrations run once)', async () => {
    const file = path.join(directory, 'nested', 'deeper', 'tessera.db')
    const first = await openSqliteMetadataStore({ file })
    const user = await insertUser(first)
    await first.close()
    const second = await openSqliteMetadataStore({ file })
    expect(await second.users.findById(user.id)).toEqual(user)
    await second.close()
  })

  it('puts the database in WAL mode', async () => {
    const file = path.join(directory, 'tessera.db')
    const store = await openSqliteMetadataStore({ file })
    const raw = new BetterSqlite3(file, { readonly: true })
    expect(raw.pragma('journal_mode', { simple: true })).toBe('wal')
    raw.close()
    await store.close()
  })

  it('begins transactions IMMEDIATE: the write lock is held from the start', async () => {
    const file = path.join(directory, 'tessera.db')
    const store = await openSqliteMetadataStore({ file })
    const other = new BetterSqlite3(file, { timeout: 0 })
    await store.transaction(async (tx) => {
      await tx.users.findById('nobody')
      // Only a read so far; a deferred transaction would not hold the lock yet.
      expect(() => other.exec('begin immediate')).toThrow(/locked|busy/i)
    })
    other.exec('begin immediate')
    other.exec('rollback')
    other.close()
    await store.close()
  })

  it('opens an in-memory database', async () => {
    const store = await openSqliteMetadataStore({ file: ':memory:' })
    const user = await insertUser(store)
    expect(await store.users.findById(user.id)).toEqual(user)
    await store.close()
    await store.close()
  })
})

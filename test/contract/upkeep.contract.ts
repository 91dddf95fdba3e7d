import { beforeEach, describe, expect, it } from 'vitest'
import type { MetadataStore } from '../../src/ports/metadata-store.js'
import {
  binaryCompare,
  insertFile,
  insertFolder,
  insertUser,
  insertVersion,
  T0,
} from './metadata-fixtures.js'

/**
 * What the repositories behind periodic upkeep promise (src/ports/metadata-store.ts): history
 * due times, settings and leases. Part of the MetadataStore contract, which calls it with its
 * fresh store.
 */
export function upkeepContract(current: () => MetadataStore): void {
  let store: MetadataStore
  beforeEach(() => {
    store = current()
  })

  /** A file of a new user's with `count` versions (no chunks). */
  async function fileWithVersions(count: number, name = 'f') {
    const user = await insertUser(store)
    const file = await insertFile(store, user, user.rootFolderId, name)
    for (let version = 1; version <= count; version++) await insertVersion(store, file, [], { version })
    return file
  }

  describe('history due times', () => {
    it('lists the files due at a time, oldest due first, by keyset pages; never one without a due time', async () => {
      const user = await insertUser(store)
      const dues = [T0 + 5, T0 + 1, T0 + 3, T0 + 3, T0 + 3, T0 + 9, null]
      const files = []
      for (const [i, due] of dues.entries()) {
        const file = await insertFile(store, user, user.rootFolderId, `f${i}`)
        await store.versions.setHistoryDue(file.id, due)
        files.push({ nodeId: file.id, dueAt: due })
      }
      await insertFolder(store, user, user.rootFolderId, 'folder')
      const expected = files
        .filter((f) => f.dueAt !== null && f.dueAt <= T0 + 5)
        .sort((a, b) => (a.dueAt as number) - (b.dueAt as number) || binaryCompare(a.nodeId, b.nodeId))
      expect(await store.versions.historyDue(T0 + 5, null, 100)).toEqual(expected)

      const paged = []
      let page = await store.versions.historyDue(T0 + 5, null, 2)
      while (page.length > 0) {
        expect(page.length).toBeLessThanOrEqual(2)
        paged.push(...page)
        page = await store.versions.historyDue(T0 + 5, page.at(-1) ?? null, 2)
      }
      expect(paged).toEqual(expected)
      expect(await store.versions.historyDue(T0, null, 100)).toEqual([])
      expect(await store.versions.historyDue(T0 + 100, null, 100)).toHaveLength(6)
    })

    it('moves and clears a due time, and a new file has none', async () => {
      const file = await fileWithVersions(2)
      expect(await store.versions.historyDue(Number.MAX_SAFE_INTEGER, null, 10)).toEqual([])
      await store.versions.setHistoryDue(file.id, T0)
      expect(await store.versions.historyDue(T0, null, 10)).toEqual([{ nodeId: file.id, dueAt: T0 }])
      await store.transaction((tx) => tx.versions.setHistoryDue(file.id, T0 + 10))
      expect(await store.versions.historyDue(T0, null, 10)).toEqual([])
      expect(await store.versions.historyDue(T0 + 10, null, 10)).toEqual([
        { nodeId: file.id, dueAt: T0 + 10 },
      ])
      await store.versions.setHistoryDue(file.id, null)
      expect(await store.versions.historyDue(Number.MAX_SAFE_INTEGER, null, 10)).toEqual([])
    })

    it('marks every file with more than one version due at once, in any state, and only those', async () => {
      const single = await fileWithVersions(1, 'single')
      const two = await fileWithVersions(2, 'two')
      const three = await fileWithVersions(3, 'three')
      const trashed = await fileWithVersions(2, 'trashed')
      await store.nodes.trashSubtree(trashed.id, T0)
      await store.versions.setHistoryDue(three.id, T0 + 1000)
      await store.versions.setHistoryDue(single.id, null)

      expect(await store.versions.markAllHistoryDue(T0 + 7)).toBe(3)
      const due = await store.versions.historyDue(T0 + 7, null, 10)
      expect(due.map((d) => d.nodeId).sort()).toEqual([two.id, three.id, trashed.id].sort())
      expect(new Set(due.map((d) => d.dueAt))).toEqual(new Set([T0 + 7]))
    })
  })

  describe('settings', () => {
    it('reads null until set, then the last value put', async () => {
      expect(await store.settings.get('a')).toBeNull()
      await store.settings.put('a', 'one')
      await store.settings.put('b', 'two')
      expect(await store.settings.get('a')).toBe('one')
      await store.transaction((tx) => tx.settings.put('a', 'three'))
      expect(await store.settings.get('a')).toBe('three')
      expect(await store.settings.get('b')).toBe('two')
    })
  })

  describe('leases', () => {
    it('is held by one holder until it expires, then anyone may take it', async () => {
      expect(await store.leases.acquire('upkeep', 'ann', T0, 1000)).toBe(true)
      expect(await store.leases.acquire('upkeep', 'bob', T0 + 1, 1000)).toBe(false)
      expect(await store.leases.acquire('upkeep', 'bob', T0 + 999, 1000)).toBe(false)
      // Another name is another lease.
      expect(await store.leases.acquire('other', 'bob', T0 + 1, 1000)).toBe(true)
      // Expired at T0 + 1000: bob takes it over, and ann can no longer renew it.
      expect(await store.leases.acquire('upkeep', 'bob', T0 + 1000, 1000)).toBe(true)
      expect(await store.leases.acquire('upkeep', 'ann', T0 + 1001, 1000)).toBe(false)
    })

    it('is renewed by its holder, which pushes its expiry', async () => {
      expect(await store.leases.acquire('upkeep', 'ann', T0, 1000)).toBe(true)
      expect(await store.leases.acquire('upkeep', 'ann', T0 + 900, 1000)).toBe(true)
      expect(await store.leases.acquire('upkeep', 'bob', T0 + 1500, 1000)).toBe(false)
      expect(await store.leases.acquire('upkeep', 'bob', T0 + 1900, 1000)).toBe(true)
    })

    it('is given up by its holder only', async () => {
      expect(await store.leases.acquire('upkeep', 'ann', T0, 1000)).toBe(true)
      await store.leases.release('upkeep', 'bob')
      expect(await store.leases.acquire('upkeep', 'carl', T0 + 1, 1000)).toBe(false)
      await store.leases.release('upkeep', 'ann')
      expect(await store.leases.acquire('upkeep', 'bob', T0 + 2, 1000)).toBe(true)
      await store.leases.release('upkeep', 'nobody')
      await store.leases.release('never-taken', 'ann')
      expect(await store.leases.acquire('upkeep', 'ann', T0 + 3, 1000)).toBe(false)
    })

    it('goes to exactly one of many holders racing for it, free or expired', async () => {
      const race = (at: number) =>
        Promise.all(
          Array.from({ length: 20 }, (_, i) => store.leases.acquire('upkeep', `holder-${i}`, at, 1000)),
        )
      const first = await race(T0)
      expect(first.filter(Boolean)).toHaveLength(1)
      // Still held: nobody else gets it, the winner included only as a renewal.
      const winner = `holder-${first.indexOf(true)}`
      expect((await race(T0 + 500)).filter(Boolean)).toEqual([true])
      expect(await store.leases.acquire('upkeep', winner, T0 + 600, 1000)).toBe(true)
      // Expired (T0 + 1600): again exactly one takes it.
      expect((await race(T0 + 1600)).filter(Boolean)).toHaveLength(1)
    })
  })
}

import { describe, expect, it } from 'vitest'
import { newId } from '../../../src/domain/ids.js'
import type { MetadataStore } from '../../../src/ports/metadata-store.js'
import {
  binaryCompare,
  chunkList,
  copyOf,
  generationOf,
  hash,
  insertChunks,
  insertDeletingChunk,
  insertFile,
  insertFolder,
  insertUser,
  insertVersion,
  refsTo,
  sorted,
  T0,
} from '../metadata-fixtures.js'
import { type OpenStore, useFreshStore } from './fresh-store.js'

/** What VersionRepository promises (src/ports/metadata/version-repository.ts): chunk lists, read plans, history. */
export function versionRepositoryContract(open: OpenStore): void {
  describe('VersionRepository', () => {
    let store: MetadataStore
    useFreshStore(open, (opened) => {
      store = opened
    })

    describe('versions', () => {
      it('finds a version and its chunks from any offset', async () => {
        const user = await insertUser(store)
        const file = await insertFile(store, user, user.rootFolderId, 'f', 10)
        const chunks = chunkList([4, 4, 2])
        const version = await insertVersion(store, file, chunks)
        expect(await store.versions.find(file.id, 1)).toEqual(version)
        expect(await store.versions.find(file.id, 2)).toBeNull()
        expect(await store.versions.chunks(version.id)).toEqual(chunks)
        const from = async (offset: number) =>
          (await store.versions.chunks(version.id, offset)).map((c) => c.index)
        expect(await from(0)).toEqual([0, 1, 2])
        expect(await from(3)).toEqual([0, 1, 2])
        expect(await from(4)).toEqual([1, 2])
        expect(await from(5)).toEqual([1, 2])
        expect(await from(9)).toEqual([2])
        expect(await from(10)).toEqual([])
      })

      it('round-trips a version of 3000 chunks', async () => {
        const user = await insertUser(store)
        const file = await insertFile(store, user, user.rootFolderId, 'big.bin')
        const chunks = chunkList(
          Array.from({ length: 3000 }, (_, i) => (i === 2999 ? 123 : 4 * 1024 * 1024)),
          'big',
        )
        const version = await insertVersion(store, file, chunks)
        expect(version.size).toBeGreaterThan(2 ** 32)
        expect(await store.versions.find(file.id, 1)).toEqual(version)
        expect(await store.versions.chunks(version.id)).toEqual(chunks)
        expect(await store.versions.chunks(version.id, version.size - 1)).toEqual([chunks[2999]])
      })

      it('reads a plan: the version, and its chunks from an offset with the copy and damage of each', async () => {
        const user = await insertUser(store)
        const file = await insertFile(store, user, user.rootFolderId, 'f', 13)
        const chunks = chunkList([4, 4, 2, 3], 'plan')
        // The third chunk gets no row at all.
        const [sound, damaged, , claimed] = chunks.map((chunk) => chunk.hash) as [
          string,
          string,
          string,
          string,
        ]
        await insertDeletingChunk(store, claimed, 3)
        await insertChunks(store, [sound], 4)
        await insertChunks(store, [damaged], 4)
        expect(await store.chunks.markDamaged(copyOf(damaged), T0)).toBe(true)
        const version = await insertVersion(store, file, chunks)
        const planned = [
          { ...chunks[0]!, generation: generationOf(sound), damaged: false },
          { ...chunks[1]!, generation: generationOf(damaged), damaged: true },
          // No live row names these (corruption, or a claimed chunk): no copy to read.
          expect.objectContaining({ ...chunks[2]!, generation: null }),
          expect.objectContaining({ ...chunks[3]!, generation: null }),
        ]
        const plan = (offset: number) => store.versions.readPlan(file.id, 1, offset)
        expect(await plan(0)).toEqual({ version, chunks: planned })
        expect(await plan(3)).toEqual({ version, chunks: planned })
        expect(await plan(4)).toEqual({ version, chunks: planned.slice(1) })
        expect(await plan(9)).toEqual({ version, chunks: planned.slice(2) })
        expect(await plan(12)).toEqual({ version, chunks: planned.slice(3) })
        expect(await plan(13)).toEqual({ version, chunks: [] })
        // Up to the chunk that holds the range's last byte, no further.
        const upTo = (from: number, to: number) => store.versions.readPlan(file.id, 1, from, to)
        expect(await upTo(0, 3)).toEqual({ version, chunks: planned.slice(0, 1) })
        expect(await upTo(0, 4)).toEqual({ version, chunks: planned.slice(0, 2) })
        expect(await upTo(4, 9)).toEqual({ version, chunks: planned.slice(1, 3) })
        expect(await upTo(12, 12)).toEqual({ version, chunks: planned.slice(3) })
        expect(await store.versions.readPlan(file.id, 2, 0)).toBeNull()
        expect(await store.versions.readPlan(newId(), 1, 0)).toBeNull()
      })

      it('reads the plan of an empty file, of a chunk named twice, and none of a deleted version', async () => {
        const user = await insertUser(store)
        const empty = await insertFile(store, user, user.rootFolderId, 'empty')
        const nothing = await insertVersion(store, empty, [])
        expect(await store.versions.readPlan(empty.id, 1, 0)).toEqual({ version: nothing, chunks: [] })

        const twice = await insertFile(store, user, user.rootFolderId, 'twice', 2)
        await insertChunks(store, [hash('x')])
        const refs = refsTo([hash('x'), hash('x')])
        const version = await insertVersion(store, twice, refs)
        const planned = refs.map((ref) => ({ ...ref, generation: generationOf(hash('x')), damaged: false }))
        expect(await store.versions.readPlan(twice.id, 1, 0)).toEqual({ version, chunks: planned })
        expect(await store.versions.readPlan(twice.id, 1, 1)).toEqual({ version, chunks: planned.slice(1) })

        await store.versions.delete([version.id])
        expect(await store.versions.readPlan(twice.id, 1, 0)).toBeNull()
      })
    })

    describe('version history', () => {
      it('lists the versions of a file newest first, and the ids of the versions of files', async () => {
        const user = await insertUser(store)
        const file = await insertFile(store, user, user.rootFolderId, 'f')
        const other = await insertFile(store, user, user.rootFolderId, 'g')
        const v1 = await insertVersion(store, file, chunkList([1]), { version: 1, createdAt: T0 })
        const v3 = await insertVersion(store, file, chunkList([3]), { version: 3, createdAt: T0 + 3 })
        const v2 = await insertVersion(store, file, chunkList([2]), { version: 2, createdAt: T0 + 2 })
        const w1 = await insertVersion(store, other, chunkList([1]))
        expect(await store.versions.list(file.id)).toEqual([v3, v2, v1])
        expect(await store.versions.list(newId())).toEqual([])
        expect(sorted(await store.versions.idsOf([file.id]))).toEqual(sorted([v1.id, v2.id, v3.id]))
        expect(sorted(await store.versions.idsOf([file.id, other.id, newId()]))).toEqual(
          sorted([v1.id, v2.id, v3.id, w1.id]),
        )
        expect(await store.versions.idsOf([])).toEqual([])
      })

      it('deletes versions with their chunk lists and answers the exact entries each chunk lost', async () => {
        const user = await insertUser(store)
        const a = await insertFile(store, user, user.rootFolderId, 'a')
        const b = await insertFile(store, user, user.rootFolderId, 'b')
        const [x, y, z, w] = [hash('x'), hash('y'), hash('z'), hash('w')]
        await insertChunks(store, [x, y, z, w])
        const a1 = await insertVersion(store, a, refsTo([x, x, y]), { version: 1 })
        const a2 = await insertVersion(store, a, refsTo([x, z]), { version: 2 })
        const b1 = await insertVersion(store, b, refsTo([y, w]))
        await store.chunks.addReferences(
          new Map([
            [x, 3],
            [y, 2],
            [z, 1],
            [w, 1],
          ]),
        )

        const dropped = await store.versions.delete([a1.id, a2.id])
        expect(dropped).toEqual(
          new Map([
            [x, 3],
            [y, 1],
            [z, 1],
          ]),
        )
        expect(await store.versions.list(a.id)).toEqual([])
        expect(await store.versions.chunks(a1.id)).toEqual([])
        expect(await store.versions.chunks(a2.id)).toEqual([])
        expect(await store.versions.list(b.id)).toEqual([b1])
        expect(await store.versions.chunks(b1.id)).toEqual(refsTo([y, w]))
        // What the caller does with the answer, in the same transaction: the counts add up.
        await store.chunks.dropReferences(dropped)
        expect(await store.audit.refCountMismatches()).toEqual([])
        expect((await store.chunks.find(x))?.refCount).toBe(0)
        expect((await store.chunks.find(y))?.refCount).toBe(1)
        expect(await store.versions.delete([])).toEqual(new Map())
      })
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
  })
}

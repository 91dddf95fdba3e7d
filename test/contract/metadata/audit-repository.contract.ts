import { describe, expect, it } from 'vitest'
import { newGeneration } from '../../../src/domain/blob-key.js'
import type { ChunkRecord } from '../../../src/domain/model.js'
import type { MetadataStore } from '../../../src/ports/metadata-store.js'
import {
  binaryCompare,
  copyOf,
  generationOf,
  hash,
  hashesOf,
  insertChunks,
  insertDeletingChunk,
  insertFile,
  insertUser,
  insertVersion,
  liveChunk,
  refsTo,
  sorted,
  T0,
} from '../metadata-fixtures.js'
import { type OpenStore, useFreshStore } from './fresh-store.js'

/** What AuditRepository promises (src/ports/metadata/audit-repository.ts): scrub's queries. */
export function auditRepositoryContract(open: OpenStore): void {
  describe('AuditRepository', () => {
    let store: MetadataStore
    useFreshStore(open, (opened) => {
      store = opened
    })

    describe('audit', () => {
      it('answers live chunks least recently verified first (then by hash), and records verification', async () => {
        const hashes = sorted([1, 2, 3, 4].map((i) => hash(`v${i}`)))
        await insertDeletingChunk(store, hash('going'))
        await insertChunks(store, hashes)
        expect(hashesOf(await store.audit.leastRecentlyVerified(10))).toEqual(hashes)
        const inOrder = async (limit: number) =>
          (await store.audit.leastRecentlyVerified(limit)).map((c) => c.hash)
        expect(await inOrder(10)).toEqual(hashes)
        await store.audit.markVerified([hashes[0]!, hashes[1]!, hash('going')], T0 + 10)
        await store.audit.markVerified([hashes[3]!], T0 + 5)
        await store.audit.markVerified([], T0 + 99)
        expect(await inOrder(10)).toEqual([hashes[2], hashes[3], hashes[0], hashes[1]])
        expect(await inOrder(2)).toEqual([hashes[2], hashes[3]])
        expect((await store.audit.leastRecentlyVerified(1))[0]).toEqual(liveChunk(hashes[2]!))
      })

      it('pages through live chunks in hash order, and counts them', async () => {
        const hashes = Array.from({ length: 25 }, (_, i) => hash(`live${i}`))
        await insertDeletingChunk(store, hash('going1'))
        await insertDeletingChunk(store, hash('going2'))
        await insertChunks(store, hashes, 9)
        // A damaged chunk is still live: scrub reads it again, and it counts.
        await store.chunks.markDamaged(copyOf(hashes[7]!), T0)
        const listed: ChunkRecord[] = []
        let page = await store.audit.liveChunks(null, 10)
        while (page.length > 0) {
          expect(page.length).toBeLessThanOrEqual(10)
          listed.push(...page)
          page = await store.audit.liveChunks(page.at(-1)!.hash, 10)
        }
        expect(listed).toEqual(
          [...hashes].sort(binaryCompare).map((h) => ({ ...liveChunk(h, 9), damaged: h === hashes[7] })),
        )
        expect(await store.audit.countLive()).toBe(25)
      })

      it('counts the live chunks marked damaged and not repaired', async () => {
        await insertChunks(store, [hash('a'), hash('b'), hash('c')])
        expect(await store.audit.countDamaged()).toBe(0)
        for (const seed of ['a', 'b']) await store.chunks.markDamaged(copyOf(hash(seed)), T0)
        expect(await store.audit.countDamaged()).toBe(2)
        await store.chunks.replaceDamaged(hash('a'), generationOf(hash('a')), newGeneration(), T0 + 1)
        expect(await store.audit.countDamaged()).toBe(1)
      })

      it('finds reference counts that differ from the version entries, and none when they agree', async () => {
        const user = await insertUser(store)
        const f1 = await insertFile(store, user, user.rootFolderId, 'f1')
        const f2 = await insertFile(store, user, user.rootFolderId, 'f2')
        await insertChunks(store, [hash('x'), hash('y'), hash('z')])
        await insertVersion(store, f1, refsTo([hash('x'), hash('x'), hash('y')]))
        await insertVersion(store, f2, refsTo([hash('y')]))
        await store.chunks.addReferences(
          new Map([
            [hash('x'), 2],
            [hash('y'), 2],
          ]),
        )
        expect(await store.audit.refCountMismatches()).toEqual([])
        // A count dropped without deleting its entries, and one added without any entry.
        await store.chunks.dropReferences(new Map([[hash('x'), 1]]))
        await store.chunks.addReferences(new Map([[hash('z'), 1]]))
        const expected = [
          { hash: hash('x'), refCount: 1, actual: 2 },
          { hash: hash('z'), refCount: 1, actual: 0 },
        ].sort((a, b) => binaryCompare(a.hash, b.hash))
        expect(await store.audit.refCountMismatches()).toEqual(expected)
      })

      it('finds version entries whose chunk row is missing or deleting', async () => {
        const user = await insertUser(store)
        const file = await insertFile(store, user, user.rootFolderId, 'f')
        await insertDeletingChunk(store, hash('going'))
        await insertChunks(store, [hash('live')])
        expect(await store.audit.danglingReferences()).toEqual([])
        await insertVersion(
          store,
          file,
          refsTo([hash('live'), hash('absent'), hash('going'), hash('absent')]),
        )
        expect(await store.audit.danglingReferences()).toEqual(sorted([hash('absent'), hash('going')]))
      })

      it('finds versions whose sizes disagree with their chunks, and none when they agree', async () => {
        const user = await insertUser(store)
        const [good, empty, rowless, wrongChunk, wrongTotal] = await Promise.all(
          ['good', 'empty', 'rowless', 'wrong-chunk', 'wrong-total'].map((name) =>
            insertFile(store, user, user.rootFolderId, name),
          ),
        )
        await insertChunks(store, [hash('four')], 4)
        await insertChunks(store, [hash('two')], 2)
        const four = { index: 0, hash: hash('four'), size: 4, offset: 0 }
        const two = { index: 1, hash: hash('two'), size: 2, offset: 4 }
        await insertVersion(store, good!, [four, two])
        await insertVersion(
          store,
          good!,
          [two].map((c) => ({ ...c, index: 0, offset: 0 })),
          { version: 2 },
        )
        await insertVersion(store, empty!, [])
        // A chunk with no row at all is a dangling reference, not a size mismatch.
        await insertVersion(store, rowless!, [four, { ...two, hash: hash('absent'), size: 9 }])
        expect(await store.audit.sizeMismatches()).toEqual([])

        // A chunk declared with another size than its bytes have (the version adds up, though).
        await insertVersion(store, wrongChunk!, [four, { ...two, size: 3 }])
        // Chunks that do not add up to the version's size, with or without chunks.
        await insertVersion(store, wrongTotal!, [four], { size: 5 })
        await insertVersion(store, empty!, [], { version: 2, size: 1 })
        const found = await store.audit.sizeMismatches()
        const key = (m: { nodeId: string; version: number }) => `${m.nodeId} v${m.version}`
        expect(found.map(key).sort()).toEqual(
          [
            { nodeId: wrongChunk!.id, version: 1 },
            { nodeId: wrongTotal!.id, version: 1 },
            { nodeId: empty!.id, version: 2 },
          ]
            .map(key)
            .sort(),
        )
        for (const mismatch of found) expect(mismatch.problem).toEqual(expect.stringMatching(/\S/))
      })
    })
  })
}

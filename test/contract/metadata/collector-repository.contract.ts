import { describe, expect, it } from 'vitest'
import { LEGACY_GENERATION, newGeneration } from '../../../src/domain/blob-key.js'
import type { MetadataStore } from '../../../src/ports/metadata-store.js'
import {
  binaryCompare,
  byCopy,
  copyOf,
  deleting,
  generationOf,
  hash,
  hashesOf,
  insertChunks,
  insertDeletingChunk,
  insertUploadNaming,
  insertUser,
  liveChunk,
  sorted,
  T0,
} from '../metadata-fixtures.js'
import { type OpenStore, useFreshStore } from './fresh-store.js'

/** What CollectorRepository promises (src/ports/metadata/collector-repository.ts): the collector's mark, claim and forget. */
export function collectorRepositoryContract(open: OpenStore): void {
  describe('CollectorRepository', () => {
    let store: MetadataStore
    useFreshStore(open, (opened) => {
      store = opened
    })

    describe('collector', () => {
      it('marks only live, unreferenced, unmarked chunks, and answers how many', async () => {
        await insertDeletingChunk(store, hash('going'))
        await insertChunks(store, [hash('a'), hash('b')])
        expect(await store.collector.countUnmarked()).toBe(2)
        expect(await store.collector.mark(T0)).toBe(2)
        expect(await store.collector.countUnmarked()).toBe(0)

        await insertChunks(store, [hash('c'), hash('referenced')])
        await store.chunks.addReferences(new Map([[hash('referenced'), 1]]))
        expect(await store.collector.countUnmarked()).toBe(1)
        expect(await store.collector.mark(T0 + 10)).toBe(1)
        expect(await store.collector.mark(T0 + 20)).toBe(0)
        expect(await store.collector.countUnmarked()).toBe(0)

        // `a` and `b` kept their first mark; `c` got the second; the others none.
        expect(hashesOf(await store.collector.claimable(T0 + 9, 10))).toEqual(sorted([hash('a'), hash('b')]))
        expect(hashesOf(await store.collector.claimable(T0 + 20, 10))).toEqual(
          sorted([hash('a'), hash('b'), hash('c')]),
        )
      })

      it('claims only chunks marked at or before the cutoff, once, and turns them deleting', async () => {
        await insertChunks(store, [hash('a'), hash('b')], 5)
        await store.collector.mark(T0)
        await insertChunks(store, [hash('c')], 5)
        await store.collector.mark(T0 + 10)

        const claimed = await store.collector.claim(T0 + 9, T0 + 30, 10)
        // Each with the copy it claims: the one the collector then deletes, by its generation.
        expect([...claimed].sort((x, y) => binaryCompare(x.hash, y.hash))).toEqual(
          [deleting(hash('a'), 5), deleting(hash('b'), 5)].sort((x, y) => binaryCompare(x.hash, y.hash)),
        )
        expect(await store.chunks.find(hash('a'))).toEqual(deleting(hash('a'), 5))
        expect((await store.chunks.find(hash('c')))?.state).toBe('live')
        // Claimed rows are not claimed again.
        expect(await store.collector.claim(T0 + 9, T0 + 31, 10)).toEqual([])
        expect(hashesOf(await store.collector.claim(T0 + 10, T0 + 32, 10))).toEqual([hash('c')])
      })

      it('never claims a chunk that an upload session names', async () => {
        const user = await insertUser(store)
        await insertChunks(store, [hash('named'), hash('free')])
        const session = await insertUploadNaming(store, user, [hash('other'), hash('named')])
        await store.collector.mark(T0)
        expect(hashesOf(await store.collector.claimable(T0, 10))).toEqual([hash('free')])
        expect(hashesOf(await store.collector.claim(T0, T0 + 1, 10))).toEqual([hash('free')])
        expect((await store.chunks.find(hash('named')))?.state).toBe('live')
        await store.uploads.delete(session.id)
        expect(hashesOf(await store.collector.claim(T0, T0 + 2, 10))).toEqual([hash('named')])
      })

      it('does not claim a chunk referenced again after it was marked (resurrected)', async () => {
        await insertChunks(store, [hash('dedup'), hash('garbage')])
        await store.collector.mark(T0)
        // A dedup hit between the mark and the sweep.
        await store.chunks.addReferences(new Map([[hash('dedup'), 1]]))
        expect(hashesOf(await store.collector.claim(T0, T0 + 1, 10))).toEqual([hash('garbage')])
        expect(await store.chunks.find(hash('dedup'))).toEqual(liveChunk(hash('dedup'), 1, 1))
      })

      it('claims at most `limit` chunks, the earliest marked first', async () => {
        const order = [3, 0, 4, 1, 2].map((i) => hash(`c${i}`))
        for (const [i, chunkHash] of order.entries()) {
          await insertChunks(store, [chunkHash])
          await store.collector.mark(T0 + i)
        }
        expect(hashesOf(await store.collector.claim(T0 + 100, T0 + 200, 2))).toEqual(
          sorted(order.slice(0, 2)),
        )
        expect(hashesOf(await store.collector.claim(T0 + 100, T0 + 200, 2))).toEqual(
          sorted(order.slice(2, 4)),
        )
        expect(hashesOf(await store.collector.claim(T0 + 100, T0 + 200, 2))).toEqual(sorted(order.slice(4)))
        expect(await store.collector.claim(T0 + 100, T0 + 200, 2)).toEqual([])
      })

      it('answers in claimable what claim would take, without taking it', async () => {
        const user = await insertUser(store)
        await insertDeletingChunk(store, hash('going'))
        await insertChunks(store, [hash('old1'), hash('old2'), hash('named'), hash('dedup')])
        await store.collector.mark(T0)
        await insertChunks(store, [hash('old3')])
        await store.collector.mark(T0 + 1)
        await insertChunks(store, [hash('young')])
        await store.collector.mark(T0 + 50)
        await insertUploadNaming(store, user, [hash('named')])
        await store.chunks.addReferences(new Map([[hash('dedup'), 1]]))

        const cutoff = T0 + 10
        const expected = sorted([hash('old1'), hash('old2'), hash('old3')])
        expect(hashesOf(await store.collector.claimable(cutoff, 10))).toEqual(expected)
        expect(hashesOf(await store.collector.claimable(cutoff, 2))).toEqual(
          sorted([hash('old1'), hash('old2')]),
        )
        for (const chunk of await store.collector.claimable(cutoff, 10)) {
          expect(chunk).toEqual(liveChunk(chunk.hash))
          expect((await store.chunks.find(chunk.hash))?.state).toBe('live')
        }
        expect(hashesOf(await store.collector.claimable(cutoff, 10))).toEqual(expected)
        expect(hashesOf(await store.collector.claim(cutoff, T0 + 100, 10))).toEqual(expected)
      })

      it('takes over only claims made at or before the cutoff, and re-stamps them', async () => {
        await insertChunks(store, [hash('a')])
        await store.collector.mark(T0)
        await store.collector.claim(T0, T0 + 10, 10)
        await insertChunks(store, [hash('b')])
        await store.collector.mark(T0 + 11)
        await store.collector.claim(T0 + 11, T0 + 20, 10)
        await insertDeletingChunk(store, hash('orphan'), 1, T0 + 5)
        // Live chunks, marked or not, are never taken over.
        await insertChunks(store, [hash('marked'), hash('unmarked')])
        await store.collector.mark(T0)
        await store.chunks.addReferences(new Map([[hash('unmarked'), 1]]))
        await store.chunks.dropReferences(new Map([[hash('unmarked'), 1]]))

        expect(hashesOf(await store.collector.takeOverStale(T0 + 4, T0 + 100, 10))).toEqual([])
        const taken = await store.collector.takeOverStale(T0 + 15, T0 + 100, 10)
        expect([...taken].sort((x, y) => binaryCompare(x.hash, y.hash))).toEqual(
          [deleting(hash('a')), deleting(hash('orphan'))].sort((x, y) => binaryCompare(x.hash, y.hash)),
        )
        // Re-stamped with `now`: a second collector with the same cutoff finds nothing.
        expect(await store.collector.takeOverStale(T0 + 15, T0 + 101, 10)).toEqual([])
        expect(hashesOf(await store.collector.takeOverStale(T0 + 99, T0 + 102, 10))).toEqual([hash('b')])
        expect(await store.collector.takeOverStale(T0 + 101, T0 + 103, 1)).toHaveLength(1)
        expect((await store.chunks.find(hash('marked')))?.state).toBe('live')
        expect((await store.chunks.find(hash('unmarked')))?.state).toBe('live')
      })

      it('forgets a deleting row only while it names that copy', async () => {
        await insertDeletingChunk(store, hash('going'))
        await insertDeletingChunk(store, hash('gone'))
        await insertChunks(store, [hash('live')])
        const going = copyOf(hash('going'))
        // Another copy of the chunk is not the claimed one: the row stays.
        await store.collector.forget([
          { hash: hash('going'), generation: newGeneration() },
          { hash: hash('going'), generation: LEGACY_GENERATION },
        ])
        expect(await store.chunks.find(hash('going'))).toEqual(deleting(hash('going')))
        // Live rows are never forgotten, whichever copy is named; rows that are not there are no error.
        await store.collector.forget([
          going,
          copyOf(hash('gone')),
          copyOf(hash('live')),
          { hash: hash('absent'), generation: newGeneration() },
        ])
        await store.collector.forget([])
        expect(await store.chunks.find(hash('going'))).toBeNull()
        expect(await store.chunks.find(hash('gone'))).toBeNull()
        expect(await store.chunks.find(hash('live'))).toEqual(liveChunk(hash('live')))

        // Uploaded again meanwhile under a new generation: the late forget of a collector that
        // paused after deleting the old copy leaves the new row alone, live or claimed in turn.
        const again = newGeneration()
        expect(await store.chunks.insert({ hash: hash('going'), size: 1, generation: again }, T0 + 10)).toBe(
          true,
        )
        await store.collector.forget([going])
        expect(await store.chunks.find(hash('going'))).toEqual({
          ...liveChunk(hash('going')),
          generation: again,
        })
        expect(await store.collector.mark(T0 + 20)).toBe(2)
        expect(hashesOf(await store.collector.claim(T0 + 20, T0 + 30, 10))).toEqual(
          sorted([hash('going'), hash('live')]),
        )
        await store.collector.forget([going])
        expect(await store.chunks.find(hash('going'))).toEqual(deleting(hash('going'), 1, again))
        await store.collector.forget([{ hash: hash('going'), generation: again }])
        expect(await store.chunks.find(hash('going'))).toBeNull()
      })

      it('answers the generation each row names, in any state', async () => {
        await insertDeletingChunk(store, hash('going'))
        await insertChunks(store, [hash('live'), hash('damaged')])
        await store.chunks.markDamaged(copyOf(hash('damaged')), T0)
        await store.chunks.insert({ hash: hash('legacy'), size: 1, generation: LEGACY_GENERATION }, T0)
        const asked = [
          hash('live'),
          hash('going'),
          hash('damaged'),
          hash('legacy'),
          hash('absent'),
          hash('live'),
        ]
        expect(await store.collector.generations(asked)).toEqual(
          new Map([
            [hash('live'), generationOf(hash('live'))],
            [hash('going'), generationOf(hash('going'))],
            [hash('damaged'), generationOf(hash('damaged'))],
            [hash('legacy'), LEGACY_GENERATION],
          ]),
        )
        expect(await store.collector.generations([])).toEqual(new Map())
      })

      it('finds the orphans among copies: no row names them, and no upload session names their hash', async () => {
        const user = await insertUser(store)
        await insertDeletingChunk(store, hash('going'))
        await insertChunks(store, [hash('live'), hash('named-live')])
        const session = await insertUploadNaming(store, user, [hash('named'), hash('named-live')])
        const other = (seed: string, generation = newGeneration()) => ({ hash: hash(seed), generation })
        const orphans = [
          other('free'),
          other('free'),
          other('free', LEGACY_GENERATION),
          other('live'),
          other('live', LEGACY_GENERATION),
          other('going'),
        ]
        const kept = [
          copyOf(hash('live')),
          // A claimed row still names its copy: the collector deletes it as a claim, not an orphan.
          copyOf(hash('going')),
          // An upload in flight may record any copy of a hash its session names.
          other('named'),
          other('named', LEGACY_GENERATION),
          other('named-live'),
          copyOf(hash('named-live')),
        ]
        const found = await store.transaction(async (tx) => {
          await tx.chunks.guard('collect')
          return tx.collector.orphans([...kept, ...orphans].reverse())
        })
        expect([...found].sort(byCopy)).toEqual([...orphans].sort(byCopy))
        expect(await store.collector.orphans([])).toEqual([])
        expect(await store.collector.orphans(kept)).toEqual([])

        // It only answers: no row is inserted or claimed.
        expect(await store.chunks.find(hash('free'))).toBeNull()
        expect(await store.chunks.find(hash('named'))).toBeNull()
        expect(await store.chunks.find(hash('live'))).toEqual(liveChunk(hash('live')))
        expect(await store.chunks.find(hash('going'))).toEqual(deleting(hash('going')))

        // Once the session is gone, the copies it protected are orphans, but for the row's own.
        await store.uploads.delete(session.id)
        const unprotected = [other('named'), other('named', LEGACY_GENERATION), other('named-live')]
        expect(
          [...(await store.collector.orphans([...unprotected, copyOf(hash('named-live'))]))].sort(byCopy),
        ).toEqual([...unprotected].sort(byCopy))
      })
    })
  })
}

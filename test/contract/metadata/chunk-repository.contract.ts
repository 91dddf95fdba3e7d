import { describe, expect, it } from 'vitest'
import { LEGACY_GENERATION, newGeneration } from '../../../src/domain/blob-key.js'
import { newId } from '../../../src/domain/ids.js'
import type { MetadataStore } from '../../../src/ports/metadata-store.js'
import {
  copyOf,
  deleting,
  generationOf,
  hash,
  hashesOf,
  insertChunks,
  insertDeletingChunk,
  insertFile,
  insertFolder,
  insertUploadNaming,
  insertUser,
  insertVersion,
  liveChunk,
  rejectsWithCode,
  sorted,
  T0,
} from '../metadata-fixtures.js'
import { type OpenStore, useFreshStore } from './fresh-store.js'

/** What ChunkRepository promises (src/ports/metadata/chunk-repository.ts): copies, damage, references, the guard. */
export function chunkRepositoryContract(open: OpenStore): void {
  describe('ChunkRepository', () => {
    let store: MetadataStore
    useFreshStore(open, (opened) => {
      store = opened
    })

    describe('chunks', () => {
      it('inserts a chunk once, with the generation of its copy: true, then false, keeping the first', async () => {
        const first = newGeneration()
        expect(await store.chunks.insert({ hash: hash(1), size: 100, generation: first }, T0)).toBe(true)
        // Another upload's copy of the same chunk is refused: the row keeps naming the first.
        expect(
          await store.chunks.insert({ hash: hash(1), size: 100, generation: newGeneration() }, T0 + 1),
        ).toBe(false)
        expect(await store.chunks.insert({ hash: hash(1), size: 100, generation: first }, T0 + 2)).toBe(false)
        expect(await store.chunks.find(hash(1))).toEqual({
          hash: hash(1),
          size: 100,
          refCount: 0,
          state: 'live',
          generation: first,
          damaged: false,
        })
        // A copy stored before generations is recorded under the legacy generation ''.
        expect(await store.chunks.insert({ hash: hash(3), size: 5, generation: LEGACY_GENERATION }, T0)).toBe(
          true,
        )
        expect(await store.chunks.find(hash(3))).toMatchObject({
          generation: LEGACY_GENERATION,
          damaged: false,
        })
        expect(await store.chunks.find(hash(2))).toBeNull()
      })

      it("records exactly one of two concurrent inserts of a chunk, under the winner's generation", async () => {
        const generations = [newGeneration(), newGeneration()]
        const results = await Promise.all(
          generations.map((generation) =>
            store.transaction((tx) => tx.chunks.insert({ hash: hash('race'), size: 1, generation }, T0)),
          ),
        )
        expect(results.filter(Boolean)).toHaveLength(1)
        expect((await store.chunks.find(hash('race')))?.generation).toBe(generations[results.indexOf(true)])
      })

      it('answers the sound chunks with their sizes: live and not damaged', async () => {
        await insertDeletingChunk(store, hash('going'), 9)
        await insertChunks(store, [hash(1), hash(3)], 5)
        await insertChunks(store, [hash(4)], 7)
        await insertChunks(store, [hash('damaged')], 3)
        expect(await store.chunks.markDamaged(copyOf(hash('damaged')), T0)).toBe(true)
        const asked = [hash(1), hash(2), hash(3), hash(1), hash(4), hash('going'), hash('damaged')]
        expect(await store.chunks.sound(asked)).toEqual(
          new Map([
            [hash(1), 5],
            [hash(3), 5],
            [hash(4), 7],
          ]),
        )
        expect(await store.chunks.sound([])).toEqual(new Map())
      })

      it('adds references for thousands of distinct hashes', async () => {
        const hashes = Array.from({ length: 2560 }, (_, i) => hash(i))
        await store.transaction(async (tx) => {
          for (const h of hashes)
            await tx.chunks.insert({ hash: h, size: 4096, generation: generationOf(h) }, T0)
        })
        expect(await store.chunks.sound(hashes)).toEqual(new Map(hashes.map((h) => [h, 4096])))
        const counts = new Map(hashes.map((h, i) => [h, (i % 3) + 1]))
        await store.transaction((tx) => tx.chunks.addReferences(counts))
        await store.chunks.dropReferences(new Map([[hash(0), 1]]))
        expect(await store.chunks.find(hash(0))).toEqual(liveChunk(hash(0), 4096, 0))
        expect((await store.chunks.find(hash(2557)))?.refCount).toBe(2)
        expect((await store.chunks.find(hash(2558)))?.refCount).toBe(3)
        expect((await store.chunks.find(hash(2559)))?.refCount).toBe(1)
      })

      it('answers which hashes the files of a user reference (readableBy), trashed or not', async () => {
        const alice = await insertUser(store)
        const bob = await insertUser(store)
        const aliceFile = await insertFile(store, alice, alice.rootFolderId, 'a', 2)
        const bobFile = await insertFile(store, bob, bob.rootFolderId, 'b', 1)
        await insertVersion(store, aliceFile, [
          { index: 0, hash: hash('h1'), size: 1, offset: 0 },
          { index: 1, hash: hash('h2'), size: 1, offset: 1 },
        ])
        await insertVersion(store, bobFile, [{ index: 0, hash: hash('h3'), size: 1, offset: 0 }])
        const asked = [hash('h1'), hash('h3'), hash('h4')]
        expect(await store.chunks.readableBy(alice.id, asked)).toEqual(new Set([hash('h1')]))
        expect(await store.chunks.readableBy(bob.id, asked)).toEqual(new Set([hash('h3')]))
        await store.nodes.trashSubtree(aliceFile.id, T0 + 1)
        expect(await store.chunks.readableBy(alice.id, asked)).toEqual(new Set([hash('h1')]))
        expect(await store.chunks.readableBy(newId(), asked)).toEqual(new Set())
      })
    })

    describe('damaged chunks', () => {
      it('marks a chunk damaged only through its live, sound copy', async () => {
        await insertDeletingChunk(store, hash('going'))
        await insertChunks(store, [hash('x'), hash('y')])
        await store.chunks.addReferences(new Map([[hash('x'), 2]]))
        // Another copy of the chunk (one replaced or collected meanwhile): not the chunk's fault.
        expect(await store.chunks.markDamaged({ hash: hash('x'), generation: newGeneration() }, T0 + 1)).toBe(
          false,
        )
        expect(
          await store.chunks.markDamaged({ hash: hash('x'), generation: LEGACY_GENERATION }, T0 + 1),
        ).toBe(false)
        expect(await store.chunks.find(hash('x'))).toEqual(liveChunk(hash('x'), 1, 2))

        expect(await store.chunks.markDamaged(copyOf(hash('x')), T0 + 2)).toBe(true)
        // Still live, still referenced: every file holding it keeps it; only dedup stops.
        expect(await store.chunks.find(hash('x'))).toEqual({ ...liveChunk(hash('x'), 1, 2), damaged: true })
        // Marked once: the same damage found again marks nothing.
        expect(await store.chunks.markDamaged(copyOf(hash('x')), T0 + 3)).toBe(false)

        // A claimed chunk is the collector's; no row, nothing to mark.
        expect(await store.chunks.markDamaged(copyOf(hash('going')), T0 + 4)).toBe(false)
        expect(await store.chunks.find(hash('going'))).toEqual(deleting(hash('going')))
        expect(await store.chunks.markDamaged(copyOf(hash('absent')), T0 + 4)).toBe(false)
        expect(await store.chunks.find(hash('absent'))).toBeNull()

        expect(await store.chunks.find(hash('y'))).toEqual(liveChunk(hash('y')))
        expect(await store.audit.countDamaged()).toBe(1)
      })

      it('replaces a damaged copy only from the damaged generation, and clears the mark', async () => {
        await insertChunks(store, [hash('x')])
        await store.chunks.addReferences(new Map([[hash('x'), 3]]))
        const from = generationOf(hash('x'))
        const to = newGeneration()
        // Sound: nothing to replace (an upload that finds it sound deduplicates instead).
        expect(await store.chunks.replaceDamaged(hash('x'), from, to, T0 + 1)).toBe(false)
        expect(await store.chunks.find(hash('x'))).toEqual(liveChunk(hash('x'), 1, 3))

        expect(await store.chunks.markDamaged(copyOf(hash('x')), T0 + 2)).toBe(true)
        expect(await store.chunks.sound([hash('x')])).toEqual(new Map())
        // From a copy that is not the damaged one (a concurrent repair got there first).
        expect(await store.chunks.replaceDamaged(hash('x'), newGeneration(), to, T0 + 3)).toBe(false)
        expect(await store.chunks.find(hash('x'))).toEqual({ ...liveChunk(hash('x'), 1, 3), damaged: true })

        expect(await store.chunks.replaceDamaged(hash('x'), from, to, T0 + 4)).toBe(true)
        const repaired = { ...liveChunk(hash('x'), 1, 3), generation: to }
        expect(await store.chunks.find(hash('x'))).toEqual(repaired)
        expect(await store.chunks.sound([hash('x')])).toEqual(new Map([[hash('x'), 1]]))
        expect(await store.collector.generations([hash('x')])).toEqual(new Map([[hash('x'), to]]))
        expect(await store.audit.countDamaged()).toBe(0)

        // The repair that lost the race changes nothing; nor does one of a chunk with no row.
        expect(await store.chunks.replaceDamaged(hash('x'), from, newGeneration(), T0 + 5)).toBe(false)
        expect(await store.chunks.find(hash('x'))).toEqual(repaired)
        expect(await store.chunks.replaceDamaged(hash('absent'), from, to, T0 + 5)).toBe(false)
        expect(await store.chunks.find(hash('absent'))).toBeNull()

        // The old copy is no longer the chunk's: damage found in it marks nothing. The new one's does.
        expect(await store.chunks.markDamaged({ hash: hash('x'), generation: from }, T0 + 6)).toBe(false)
        expect(await store.chunks.markDamaged({ hash: hash('x'), generation: to }, T0 + 7)).toBe(true)
        const again = newGeneration()
        expect(await store.chunks.replaceDamaged(hash('x'), to, again, T0 + 8)).toBe(true)
        expect(await store.chunks.find(hash('x'))).toEqual({ ...repaired, generation: again })
      })

      it('never repairs a claimed chunk, and counts only live damage', async () => {
        await insertChunks(store, [hash('y'), hash('kept')])
        await store.chunks.addReferences(new Map([[hash('kept'), 1]]))
        for (const seed of ['y', 'kept'])
          expect(await store.chunks.markDamaged(copyOf(hash(seed)), T0)).toBe(true)
        expect(await store.audit.countDamaged()).toBe(2)
        // Damaged garbage is garbage: the collector claims it like any other.
        expect(await store.collector.mark(T0 + 1)).toBe(1)
        expect(hashesOf(await store.collector.claim(T0 + 1, T0 + 2, 10))).toEqual([hash('y')])
        expect(
          await store.chunks.replaceDamaged(hash('y'), generationOf(hash('y')), newGeneration(), T0 + 3),
        ).toBe(false)
        expect(await store.chunks.find(hash('y'))).toEqual({ ...deleting(hash('y')), damaged: true })
        expect(await store.audit.countDamaged()).toBe(1)
      })
    })

    describe('chunk lifecycle', () => {
      it('answers only live rows as sound, and never re-creates a row the collector claimed', async () => {
        await insertDeletingChunk(store, hash('going'))
        await insertChunks(store, [hash('live')])
        expect(await store.chunks.sound([hash('live'), hash('going'), hash('absent')])).toEqual(
          new Map([[hash('live'), 1]]),
        )
        expect(await store.chunks.find(hash('going'))).toEqual(deleting(hash('going')))
        // A chunk PUT of claimed bytes finds the row: its copy is not recorded, not even as live.
        expect(
          await store.chunks.insert({ hash: hash('going'), size: 1, generation: newGeneration() }, T0 + 1),
        ).toBe(false)
        expect(await store.chunks.find(hash('going'))).toEqual(deleting(hash('going')))
      })

      it('clears the collector mark on a new reference, so the chunk waits a full grace period again', async () => {
        await insertChunks(store, [hash('a')])
        expect(await store.collector.mark(T0)).toBe(1)
        await store.chunks.addReferences(new Map([[hash('a'), 2]]))
        expect(await store.chunks.find(hash('a'))).toEqual(liveChunk(hash('a'), 1, 2))
        await store.chunks.dropReferences(new Map([[hash('a'), 2]]))
        // Garbage again, but its old mark is gone: nothing to claim on it.
        expect(await store.collector.claimable(T0 + 1000, 10)).toEqual([])
        expect(await store.collector.claim(T0 + 1000, T0 + 1000, 10)).toEqual([])
        expect(await store.collector.countUnmarked()).toBe(1)
        expect(await store.collector.mark(T0 + 500)).toBe(1)
        expect(await store.collector.claim(T0 + 499, T0 + 1000, 10)).toEqual([])
        expect(hashesOf(await store.collector.claim(T0 + 500, T0 + 1000, 10))).toEqual([hash('a')])
      })

      it('refuses to reference a missing or claimed chunk (CHUNKS_MISSING), changing nothing', async () => {
        await insertDeletingChunk(store, hash('going'))
        await insertChunks(store, [hash('a'), hash('b')])
        expect(await store.collector.mark(T0)).toBe(2)
        const user = await insertUser(store)
        for (const bad of [hash('absent'), hash('going')]) {
          const counts = new Map([
            [hash('a'), 1],
            [bad, 1],
            [hash('b'), 3],
          ])
          let folderId = ''
          await rejectsWithCode(
            store.transaction(async (tx) => {
              folderId = (await insertFolder(tx, user, user.rootFolderId, `written before ${bad}`)).id
              await tx.chunks.addReferences(counts)
            }),
            'CHUNKS_MISSING',
          )
          expect(await store.nodes.findAnyState(folderId)).toBeNull()
          // On its own, outside a transaction, it is all or nothing as well.
          await rejectsWithCode(store.chunks.addReferences(counts), 'CHUNKS_MISSING')
        }
        expect(await store.chunks.find(hash('a'))).toEqual(liveChunk(hash('a')))
        expect(await store.chunks.find(hash('b'))).toEqual(liveChunk(hash('b')))
        expect(await store.chunks.find(hash('going'))).toEqual(deleting(hash('going')))
        expect(await store.chunks.find(hash('absent'))).toBeNull()
        // The marks were not cleared either.
        expect(hashesOf(await store.collector.claimable(T0, 10))).toEqual(sorted([hash('a'), hash('b')]))
      })

      it('drops references by the given amounts, and only from the named chunks', async () => {
        await insertChunks(store, [hash('a'), hash('b'), hash('c')], 7)
        await store.chunks.addReferences(
          new Map([
            [hash('a'), 3],
            [hash('b'), 2],
            [hash('c'), 1],
          ]),
        )
        await store.chunks.dropReferences(
          new Map([
            [hash('a'), 2],
            [hash('b'), 2],
          ]),
        )
        await store.chunks.dropReferences(new Map())
        expect(await store.chunks.find(hash('a'))).toEqual(liveChunk(hash('a'), 7, 1))
        expect(await store.chunks.find(hash('b'))).toEqual(liveChunk(hash('b'), 7, 0))
        expect(await store.chunks.find(hash('c'))).toEqual(liveChunk(hash('c'), 7, 1))
      })

      it('takes the chunk guard inside transactions, in both modes, and releases it at the end', async () => {
        const user = await insertUser(store)
        await insertChunks(store, [hash('a'), hash('b')])
        await store.collector.mark(T0)
        // A guard held past its transaction would make the next transaction (another
        // connection of the pool) wait for ever.
        await store.transaction(async (tx) => {
          await tx.chunks.guard('use')
          await insertUploadNaming(tx, user, [hash('a')])
        })
        const claimed = await store.transaction(async (tx) => {
          await tx.chunks.guard('collect')
          return tx.collector.claim(T0, T0 + 1, 10)
        })
        expect(hashesOf(claimed)).toEqual([hash('b')])
        await store.transaction(async (tx) => {
          await tx.chunks.guard('use')
          await tx.chunks.guard('use')
        })
        await store.transaction((tx) => tx.chunks.guard('collect'))
        expect((await store.chunks.find(hash('a')))?.state).toBe('live')
      })
    })
  })
}

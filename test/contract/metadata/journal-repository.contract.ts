import { describe, expect, it } from 'vitest'
import { newId } from '../../../src/domain/ids.js'
import type { NewChange } from '../../../src/domain/journal.js'
import type { MetadataStore } from '../../../src/ports/metadata-store.js'
import { insertUser, T0 } from '../metadata-fixtures.js'
import { type OpenStore, useFreshStore } from './fresh-store.js'

/** A change record, valid, with overridable fields. */
function change(overrides: Partial<NewChange> = {}): NewChange {
  return {
    action: 'create',
    kind: 'file',
    nodeId: newId(),
    name: 'notes.txt',
    parentId: null,
    version: 1,
    size: 12,
    contentHash: 'ab'.repeat(32),
    actorId: newId(),
    at: T0,
    ...overrides,
  }
}

/**
 * What JournalRepository promises (src/ports/metadata/journal-repository.ts): the positions a
 * sync client's cursor relies on.
 */
export function journalRepositoryContract(open: OpenStore): void {
  describe('JournalRepository', () => {
    let store: MetadataStore
    useFreshStore(open, (opened) => {
      store = opened
    })

    describe('journal', () => {
      it('numbers each user’s entries 1, 2, 3... in the order given, and reads them back', async () => {
        const [ann, bob] = [await insertUser(store), await insertUser(store)]
        expect(await store.journal.bounds(ann.id)).toEqual({ head: 0, floor: 0 })
        const first = [change({ name: 'a' }), change({ name: 'b', action: 'update', parentId: newId() })]
        const appended = await store.journal.append([
          { userId: ann.id, change: first[0] as NewChange },
          { userId: bob.id, change: change({ name: 'for bob' }) },
          { userId: ann.id, change: first[1] as NewChange },
        ])
        expect(appended.filter((e) => e.userId === ann.id)).toEqual([
          { ...first[0], userId: ann.id, seq: 1 },
          { ...first[1], userId: ann.id, seq: 2 },
        ])
        expect(appended.find((e) => e.userId === bob.id)).toMatchObject({ seq: 1, name: 'for bob' })
        const later = change({ name: 'c', kind: 'folder', version: null, contentHash: null, size: 0 })
        expect(await store.journal.append([{ userId: ann.id, change: later }])).toEqual([
          { ...later, userId: ann.id, seq: 3 },
        ])
        expect((await store.journal.after(ann.id, 0, 100)).map((e) => e.name)).toEqual(['a', 'b', 'c'])
        expect((await store.journal.after(ann.id, 1, 1)).map((e) => e.seq)).toEqual([2])
        expect(await store.journal.after(ann.id, 3, 100)).toEqual([])
        expect(await store.journal.after(newId(), 0, 100)).toEqual([])
        expect(await store.journal.bounds(ann.id)).toEqual({ head: 3, floor: 0 })
        expect(await store.journal.bounds(bob.id)).toEqual({ head: 1, floor: 0 })
        expect(await store.journal.append([])).toEqual([])
      })

      it('appends with the transaction, and hands out no position for a rolled-back one', async () => {
        const ann = await insertUser(store)
        await expect(
          store.transaction(async (tx) => {
            await tx.journal.append([{ userId: ann.id, change: change({ name: 'lost' }) }])
            throw new Error('the change failed')
          }),
        ).rejects.toThrow('the change failed')
        expect(await store.journal.bounds(ann.id)).toEqual({ head: 0, floor: 0 })
        await store.transaction((tx) =>
          tx.journal.append([{ userId: ann.id, change: change({ name: 'kept' }) }]),
        )
        expect(await store.journal.after(ann.id, 0, 10)).toMatchObject([{ seq: 1, name: 'kept' }])
      })

      it('gives concurrent transactions consecutive positions, committed in position order', async () => {
        const ann = await insertUser(store)
        // Each appends, then dawdles before committing: on PostgreSQL the next one must wait for
        // the head, so that no reader ever sees position n+1 before n has committed.
        const observed: number[][] = []
        let writing = true
        const reader = (async () => {
          while (writing) observed.push((await store.journal.after(ann.id, 0, 1000)).map((e) => e.seq))
        })()
        await Promise.all(
          Array.from({ length: 8 }, (_, i) =>
            store.transaction(async (tx) => {
              await tx.journal.append([
                { userId: ann.id, change: change({ name: `t${i} a` }) },
                { userId: ann.id, change: change({ name: `t${i} b` }) },
              ])
              await new Promise((resolve) => setTimeout(resolve, 5))
            }),
          ),
        )
        writing = false
        await reader
        const entries = await store.journal.after(ann.id, 0, 1000)
        expect(entries.map((e) => e.seq)).toEqual(Array.from({ length: 16 }, (_, i) => i + 1))
        // A transaction's two entries are adjacent.
        for (let i = 0; i < 16; i += 2) {
          expect((entries[i] as { name: string }).name.split(' ')[0]).toBe(
            (entries[i + 1] as { name: string }).name.split(' ')[0],
          )
        }
        // Whatever a reader saw while others were in flight was a gapless prefix.
        for (const seen of observed)
          expect(seen).toEqual(Array.from({ length: seen.length }, (_, i) => i + 1))
      })

      it('fans out to several users from concurrent transactions without deadlocking', async () => {
        const users = [await insertUser(store), await insertUser(store), await insertUser(store)]
        await Promise.all(
          Array.from({ length: 12 }, (_, i) =>
            store.transaction(async (tx) => {
              // Each transaction names the users in a different order.
              const order = i % 2 === 0 ? users : [...users].reverse()
              await tx.journal.append(
                order.map((user) => ({ userId: user.id, change: change({ name: `t${i}` }) })),
              )
            }),
          ),
        )
        for (const user of users) {
          expect((await store.journal.after(user.id, 0, 100)).map((e) => e.seq)).toEqual(
            Array.from({ length: 12 }, (_, i) => i + 1),
          )
        }
      })

      it('compacts by age and by count, raising the floor to match; positions go on from the head', async () => {
        const [ann, bob, cat] = [await insertUser(store), await insertUser(store), await insertUser(store)]
        const append = (userId: string, ats: number[]) =>
          store.journal.append(ats.map((at) => ({ userId, change: change({ at, name: String(at) }) })))
        await append(ann.id, [T0, T0 + 1, T0 + 2, T0 + 10, T0 + 11])
        await append(bob.id, [T0 + 20, T0 + 21])
        await append(
          cat.id,
          Array.from({ length: 8 }, (_, i) => T0 + 30 + i),
        )

        // Older than T0 + 10: ann's first three; cat keeps its newest 5.
        const result = await store.journal.compact(T0 + 10, 5, 100)
        expect(result).toEqual({ removed: 3 + 3, more: false })
        expect(await store.journal.bounds(ann.id)).toEqual({ head: 5, floor: 3 })
        expect((await store.journal.after(ann.id, 0, 10)).map((e) => e.seq)).toEqual([4, 5])
        expect(await store.journal.bounds(bob.id)).toEqual({ head: 2, floor: 0 })
        expect(await store.journal.bounds(cat.id)).toEqual({ head: 8, floor: 3 })
        expect((await store.journal.after(cat.id, 0, 10)).map((e) => e.seq)).toEqual([4, 5, 6, 7, 8])
        // Nothing left to do; then new entries continue after the head.
        expect(await store.journal.compact(T0 + 10, 5, 100)).toEqual({ removed: 0, more: false })
        const [next] = await append(ann.id, [T0 + 50])
        expect(next?.seq).toBe(6)
      })

      it('compacts a bounded number of journals per call and says more remain', async () => {
        const users = [await insertUser(store), await insertUser(store), await insertUser(store)]
        for (const user of users)
          await store.journal.append([{ userId: user.id, change: change({ at: T0 }) }])
        const first = await store.journal.compact(T0 + 1, 1000, 2)
        expect(first).toEqual({ removed: 2, more: true })
        const second = await store.journal.compact(T0 + 1, 1000, 2)
        expect(second).toEqual({ removed: 1, more: false })
        for (const user of users) expect(await store.journal.bounds(user.id)).toEqual({ head: 1, floor: 1 })
      })
    })
  })
}

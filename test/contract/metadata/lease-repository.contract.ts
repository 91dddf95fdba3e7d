import { describe, expect, it } from 'vitest'
import type { MetadataStore } from '../../../src/ports/metadata-store.js'
import { T0 } from '../metadata-fixtures.js'
import { type OpenStore, useFreshStore } from './fresh-store.js'

/** What LeaseRepository promises (src/ports/metadata/lease-repository.ts): one holder at a time. */
export function leaseRepositoryContract(open: OpenStore): void {
  describe('LeaseRepository', () => {
    let store: MetadataStore
    useFreshStore(open, (opened) => {
      store = opened
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
  })
}

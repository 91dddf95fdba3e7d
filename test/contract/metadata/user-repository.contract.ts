import { describe, expect, it } from 'vitest'
import { newId } from '../../../src/domain/ids.js'
import type { MetadataStore } from '../../../src/ports/metadata-store.js'
import { insertUser, rejectsWithCode } from '../metadata-fixtures.js'
import { type OpenStore, useFreshStore } from './fresh-store.js'

/** What UserRepository promises (src/ports/metadata/user-repository.ts). */
export function userRepositoryContract(open: OpenStore): void {
  describe('UserRepository', () => {
    let store: MetadataStore
    useFreshStore(open, (opened) => {
      store = opened
    })

    describe('users', () => {
      it('round-trips a user with numbers as numbers', async () => {
        const user = await insertUser(store, { quotaBytes: 16 * 1024 ** 4, usedBytes: 123 })
        expect(await store.users.findById(user.id)).toEqual(user)
        expect(await store.users.findByEmail(user.email)).toEqual(user)
        expect(await store.users.findById(newId())).toBeNull()
        expect(await store.users.findByEmail('nobody@example.test')).toBeNull()
      })

      it('refuses a second user with the same email (EMAIL_TAKEN)', async () => {
        const first = await insertUser(store)
        await rejectsWithCode(insertUser(store, { email: first.email }), 'EMAIL_TAKEN')
      })

      it('enforces the quota in addUsedBytes only when asked', async () => {
        const user = await insertUser(store, { quotaBytes: 100 })
        expect(await store.users.addUsedBytes(user.id, 60, { withinQuota: true })).toBe(true)
        expect(await store.users.addUsedBytes(user.id, 41, { withinQuota: true })).toBe(false)
        expect((await store.users.findById(user.id))?.usedBytes).toBe(60)
        expect(await store.users.addUsedBytes(user.id, 40, { withinQuota: true })).toBe(true)
        expect(await store.users.addUsedBytes(user.id, 50, { withinQuota: false })).toBe(true)
        expect(await store.users.addUsedBytes(user.id, -30)).toBe(true)
        expect((await store.users.findById(user.id))?.usedBytes).toBe(120)
        expect(await store.users.addUsedBytes(newId(), 1)).toBe(false)
      })

      it('lets only one of two concurrent additions that together exceed the quota succeed', async () => {
        const user = await insertUser(store, { quotaBytes: 10 })
        const results = await Promise.all([
          store.users.addUsedBytes(user.id, 6, { withinQuota: true }),
          store.users.addUsedBytes(user.id, 6, { withinQuota: true }),
        ])
        expect(results.filter(Boolean)).toHaveLength(1)
        expect((await store.users.findById(user.id))?.usedBytes).toBe(6)
      })

      it('lets only one of two concurrent transactions that together exceed the quota succeed', async () => {
        const user = await insertUser(store, { quotaBytes: 10 })
        const reserve = () =>
          store.transaction(async (tx) => {
            await tx.users.lockTree(user.id)
            return tx.users.addUsedBytes(user.id, 6, { withinQuota: true })
          })
        const results = await Promise.all([reserve(), reserve()])
        expect(results.filter(Boolean)).toHaveLength(1)
        expect((await store.users.findById(user.id))?.usedBytes).toBe(6)
      })
    })
  })
}

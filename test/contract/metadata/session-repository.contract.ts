import { describe, expect, it } from 'vitest'
import type { MetadataStore } from '../../../src/ports/metadata-store.js'
import { hash, insertUser, T0 } from '../metadata-fixtures.js'
import { type OpenStore, useFreshStore } from './fresh-store.js'

/** What SessionRepository promises (src/ports/metadata/session-repository.ts). */
export function sessionRepositoryContract(open: OpenStore): void {
  describe('SessionRepository', () => {
    let store: MetadataStore
    useFreshStore(open, (opened) => {
      store = opened
    })

    describe('sessions', () => {
      it('finds the user of a session until it expires, and deletes it', async () => {
        const user = await insertUser(store)
        const session = { tokenHash: hash('token'), userId: user.id, createdAt: T0, expiresAt: T0 + 1000 }
        await store.sessions.insert(session)
        expect(await store.sessions.findUser(session.tokenHash, T0 + 999)).toEqual({
          user,
          expiresAt: T0 + 1000,
        })
        expect(await store.sessions.findUser(session.tokenHash, T0 + 1000)).toBeNull()
        expect(await store.sessions.findUser(hash('other'), T0)).toBeNull()
        await store.sessions.delete(session.tokenHash)
        expect(await store.sessions.findUser(session.tokenHash, T0)).toBeNull()
      })

      it('answers the user as it is now, not as it was when the session began', async () => {
        const user = await insertUser(store, { usedBytes: 5 })
        await store.sessions.insert({
          tokenHash: hash('t'),
          userId: user.id,
          createdAt: T0,
          expiresAt: T0 + 10,
        })
        await store.users.addUsedBytes(user.id, 7)
        expect((await store.sessions.findUser(hash('t'), T0))?.user).toEqual({ ...user, usedBytes: 12 })
      })

      it('deletes expired sessions and counts them', async () => {
        const user = await insertUser(store)
        for (const [seed, expiresAt] of [
          ['a', T0 + 10],
          ['b', T0 + 20],
          ['c', T0 + 30],
        ] as const) {
          await store.sessions.insert({ tokenHash: hash(seed), userId: user.id, createdAt: T0, expiresAt })
        }
        expect(await store.sessions.deleteExpired(T0 + 20)).toBe(2)
        expect(await store.sessions.findUser(hash('c'), T0 + 20)).not.toBeNull()
        expect(await store.sessions.deleteExpired(T0 + 20)).toBe(0)
      })
    })
  })
}

import { describe, expect, it } from 'vitest'
import { newGeneration } from '../../../src/domain/blob-key.js'
import type { NodeRecord } from '../../../src/domain/model.js'
import type { MetadataStore } from '../../../src/ports/metadata-store.js'
import { hash, insertFolder, insertUser, T0 } from '../metadata-fixtures.js'
import { type OpenStore, useFreshStore } from './fresh-store.js'

/** What MetadataStore itself promises (src/ports/metadata-store.ts): ping, and `transaction`'s commit and rollback. */
export function unitOfWorkContract(open: OpenStore): void {
  describe('MetadataStore', () => {
    let store: MetadataStore
    useFreshStore(open, (opened) => {
      store = opened
    })

    it('answers ping', async () => {
      await expect(store.ping()).resolves.toBeUndefined()
    })

    describe('transactions', () => {
      it('commits what the work wrote and answers its result', async () => {
        const result = await store.transaction(async (tx) => (await insertUser(tx)).id)
        expect(await store.users.findById(result)).not.toBeNull()
      })

      it('rolls back everything when the work throws, and rethrows', async () => {
        const user = await insertUser(store)
        const failure = new Error('boom')
        let inserted: NodeRecord | undefined
        let otherId = ''
        await expect(
          store.transaction(async (tx) => {
            otherId = (await insertUser(tx)).id
            inserted = await insertFolder(tx, user, user.rootFolderId, 'doomed')
            await tx.users.addUsedBytes(user.id, 5)
            await tx.chunks.insert({ hash: hash('doomed'), size: 1, generation: newGeneration() }, T0)
            throw failure
          }),
        ).rejects.toBe(failure)
        expect(await store.users.findById(otherId)).toBeNull()
        expect(await store.nodes.findLive(user.id, inserted!.id)).toBeNull()
        expect((await store.users.findById(user.id))?.usedBytes).toBe(0)
        expect(await store.chunks.find(hash('doomed'))).toBeNull()
      })
    })
  })
}

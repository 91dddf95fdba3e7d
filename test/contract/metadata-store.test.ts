import { describe, expect, it } from 'vitest'
import { AppError } from '../../src/domain/errors.js'
import { DATABASES, openTestMetadataStore } from '../helpers/databases.js'
import { insertFolder, insertUser, node } from './metadata-fixtures.js'
import { metadataStoreContract } from './metadata-store.contract.js'

// The SQL store once per database (Kysely's own suite does the same per dialect). PostgreSQL
// is skipped only when global setup found it unreachable, and said so loudly.
for (const { name, available } of DATABASES) {
  describe.skipIf(!available)(`SqlMetadataStore on ${name}`, () => {
    metadataStoreContract(() => openTestMetadataStore(name))

    it('raises a plain error, not NAME_TAKEN, for a reused node id', async () => {
      const { store, cleanup } = await openTestMetadataStore(name)
      try {
        const user = await insertUser(store)
        const folder = await insertFolder(store, user, user.rootFolderId, 'one')
        const clash = node({ id: folder.id, ownerId: user.id, parentId: user.rootFolderId, name: 'two' })
        const error = await store.nodes.insert(clash).then(
          () => null,
          (caught: unknown) => caught,
        )
        expect(error).toBeInstanceOf(Error)
        expect(error).not.toBeInstanceOf(AppError)
      } finally {
        await cleanup()
      }
    })
  })
}

import { describe } from 'vitest'
import { openPostgresMetadataStore } from '../../src/adapters/postgres/postgres-metadata-store.js'
import { DATABASES, openTestMetadataStore } from '../helpers/databases.js'
import { sharePasswordThrottleContract } from './share-throttle.contract.js'

// The throttle once per database; on PostgreSQL also with a second store on the same data
// (another API node).
for (const { name, available } of DATABASES) {
  describe.skipIf(!available)(`share link password throttle on ${name}`, () => {
    sharePasswordThrottleContract(async () => {
      const { store, config, cleanup } = await openTestMetadataStore(name)
      return {
        store,
        cleanup,
        openSecond:
          config.kind === 'postgres'
            ? () => openPostgresMetadataStore({ url: config.url, poolSize: 4 })
            : null,
      }
    })
  })
}

import { afterEach, beforeEach } from 'vitest'
import type { MetadataStore } from '../../../src/ports/metadata-store.js'
import type { TestMetadataStore } from '../../helpers/databases.js'

/** Opens a fresh, empty, migrated store of its own (openTestMetadataStore of one database). */
export type OpenStore = () => Promise<TestMetadataStore>

/**
 * Gives each test of the calling suite a store of its own: opened before the test and handed to
 * `use` (with where it is, for a second store on the same data), closed and deleted after it.
 * Each repository's contract calls it inside its own describe block, so that one opens a store
 * per test, and any contract runs alone as well as in the runner (metadata-store.test.ts).
 */
export function useFreshStore(
  open: OpenStore,
  use: (store: MetadataStore, opened: TestMetadataStore) => void,
): void {
  let opened: TestMetadataStore | undefined
  beforeEach(async () => {
    opened = await open()
    use(opened.store, opened)
  })
  afterEach(async () => {
    await opened?.cleanup()
    opened = undefined
  })
}

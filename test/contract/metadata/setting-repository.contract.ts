import { describe, expect, it } from 'vitest'
import type { MetadataStore } from '../../../src/ports/metadata-store.js'
import { type OpenStore, useFreshStore } from './fresh-store.js'

/** What SettingRepository promises (src/ports/metadata/setting-repository.ts). */
export function settingRepositoryContract(open: OpenStore): void {
  describe('SettingRepository', () => {
    let store: MetadataStore
    useFreshStore(open, (opened) => {
      store = opened
    })

    describe('settings', () => {
      it('reads null until set, then the last value put', async () => {
        expect(await store.settings.get('a')).toBeNull()
        await store.settings.put('a', 'one')
        await store.settings.put('b', 'two')
        expect(await store.settings.get('a')).toBe('one')
        await store.transaction((tx) => tx.settings.put('a', 'three'))
        expect(await store.settings.get('a')).toBe('three')
        expect(await store.settings.get('b')).toBe('two')
      })
    })
  })
}

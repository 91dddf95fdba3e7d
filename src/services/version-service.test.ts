import { describe, expect, it } from 'vitest'
import { expectAppError } from '../../test/helpers/app-error.js'
import { serviceScene, storeFile } from '../../test/helpers/service-files.js'

describe('VersionService', () => {
  const s = serviceScene()

  it('lists a file’s versions, each with its size and hash', async () => {
    const file = await storeFile(s.services, s.ann, 'a.txt', 'one')
    s.fx.advance(1000)
    const second = await storeFile(s.services, s.ann, 'a.txt', 'second', { baseVersion: 1 })
    const versions = await s.services.versions.list(s.ann, file.id)
    expect(versions.map((v) => [v.version, v.size]).sort()).toEqual([
      [1, 3],
      [2, 6],
    ])
    expect(versions.find((v) => v.version === 2)?.contentHash).toBe(second.contentHash)
  })

  it('restores an old version as a new one, keeping the one it replaces, and counts the size change', async () => {
    const first = await storeFile(s.services, s.ann, 'a.txt', 'one')
    s.fx.advance(1000)
    await storeFile(s.services, s.ann, 'a.txt', 'second', { baseVersion: 1 })
    expect(await s.usedBytes()).toBe(6)
    s.fx.advance(1000)
    const restored = await s.services.versions.restore(s.ann, first.id, 1)
    expect(restored).toMatchObject({
      id: first.id,
      currentVersion: 3,
      size: 3,
      contentHash: first.contentHash,
    })
    expect((await s.services.versions.list(s.ann, first.id)).map((v) => v.version).sort()).toEqual([1, 2, 3])
    expect(await s.usedBytes()).toBe(3)
    expect((await s.services.files.planDownload(s.ann, first.id)).version).toMatchObject({
      version: 3,
      size: 3,
    })
  })

  it('answers 404 for a version that never was, and for a file the caller cannot see', async () => {
    const file = await storeFile(s.services, s.ann, 'a.txt', 'one')
    await expectAppError(s.services.versions.restore(s.ann, file.id, 2), 'NOT_FOUND')
    const bob = await s.fx.user('bob')
    await expectAppError(s.services.versions.list(bob, file.id), 'NOT_FOUND')
    await expectAppError(s.services.versions.restore(bob, file.id, 1), 'NOT_FOUND')
    await expectAppError(s.services.versions.list(s.ann, 'not an id'), 'NOT_FOUND')
  })
})

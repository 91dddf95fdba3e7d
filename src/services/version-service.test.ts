import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { errorCodeOf, storeFile } from '../../test/helpers/service-files.js'
import { openServiceFixture, type ServiceFixture } from '../../test/helpers/service-fixture.js'
import type { User } from '../domain/model.js'

describe('VersionService', () => {
  let fx: ServiceFixture
  let ann: User
  beforeEach(async () => {
    fx = await openServiceFixture()
    ann = await fx.user('ann')
  })
  afterEach(() => fx.close())

  const usedBytes = async () => (await fx.services.auth.currentUser(ann.id)).usedBytes

  it('lists a file’s versions, each with its size and hash', async () => {
    const file = await storeFile(fx.services, ann, 'a.txt', 'one')
    fx.advance(1000)
    const second = await storeFile(fx.services, ann, 'a.txt', 'second', { baseVersion: 1 })
    const versions = await fx.services.versions.list(ann, file.id)
    expect(versions.map((v) => [v.version, v.size]).sort()).toEqual([
      [1, 3],
      [2, 6],
    ])
    expect(versions.find((v) => v.version === 2)?.contentHash).toBe(second.contentHash)
  })

  it('restores an old version as a new one, keeping the one it replaces, and counts the size change', async () => {
    const first = await storeFile(fx.services, ann, 'a.txt', 'one')
    fx.advance(1000)
    await storeFile(fx.services, ann, 'a.txt', 'second', { baseVersion: 1 })
    expect(await usedBytes()).toBe(6)
    fx.advance(1000)
    const restored = await fx.services.versions.restore(ann, first.id, 1)
    expect(restored).toMatchObject({
      id: first.id,
      currentVersion: 3,
      size: 3,
      contentHash: first.contentHash,
    })
    expect((await fx.services.versions.list(ann, first.id)).map((v) => v.version).sort()).toEqual([1, 2, 3])
    expect(await usedBytes()).toBe(3)
    expect((await fx.services.files.planDownload(ann, first.id)).version).toMatchObject({
      version: 3,
      size: 3,
    })
  })

  it('answers 404 for a version that never was, and for a file the caller cannot see', async () => {
    const file = await storeFile(fx.services, ann, 'a.txt', 'one')
    expect(await errorCodeOf(fx.services.versions.restore(ann, file.id, 2))).toBe('NOT_FOUND')
    const bob = await fx.user('bob')
    expect(await errorCodeOf(fx.services.versions.list(bob, file.id))).toBe('NOT_FOUND')
    expect(await errorCodeOf(fx.services.versions.restore(bob, file.id, 1))).toBe('NOT_FOUND')
    expect(await errorCodeOf(fx.services.versions.list(ann, 'not an id'))).toBe('NOT_FOUND')
  })
})

import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { errorCodeOf, storeFile } from '../../test/helpers/service-files.js'
import { openServiceFixture, type ServiceFixture } from '../../test/helpers/service-fixture.js'
import type { User } from '../domain/model.js'

describe('FileService', () => {
  let fx: ServiceFixture
  let ann: User
  beforeEach(async () => {
    fx = await openServiceFixture()
    ann = await fx.user('ann')
  })
  afterEach(() => fx.close())

  const mkdir = async (name: string, parentId?: string) =>
    (await fx.services.folders.create(ann, { name, parentId })).node
  const usedBytes = async () => (await fx.services.auth.currentUser(ann.id)).usedBytes

  it('lists a folder a page at a time: folders first, then files, each by name', async () => {
    const dir = await mkdir('dir')
    for (const name of ['b', 'a']) await mkdir(name, dir.id)
    for (const name of ['z.txt', 'c.txt', 'm.txt'])
      await storeFile(fx.services, ann, name, name, { folderId: dir.id })
    const names: string[] = []
    let cursor: string | undefined
    for (let pages = 1; ; pages++) {
      const { page, path } = await fx.services.files.list(ann, { folderId: dir.id, limit: 2, cursor })
      expect(path).toBe('/dir')
      names.push(...page.items.map((item) => item.name))
      if (page.nextCursor === null) {
        expect(pages).toBe(3)
        break
      }
      cursor = page.nextCursor
    }
    expect(names).toEqual(['a', 'b', 'c.txt', 'm.txt', 'z.txt'])
  })

  it('lists the root when no folder is named, and answers 404 for a malformed or foreign folder id', async () => {
    await mkdir('top')
    const root = await fx.services.files.list(ann, {})
    expect(root).toMatchObject({ path: '/', folder: { id: ann.rootFolderId } })
    expect(root.page.items.map((item) => item.name)).toEqual(['top'])
    const bob = await fx.user('bob')
    expect(await errorCodeOf(fx.services.files.list(ann, { folderId: bob.rootFolderId }))).toBe('NOT_FOUND')
    expect(await errorCodeOf(fx.services.files.list(ann, { folderId: 'nope' }))).toBe('NOT_FOUND')
    expect(await errorCodeOf(fx.services.files.list(ann, { cursor: 'garbage' }))).toBe('INVALID_REQUEST')
  })

  it('renames and moves a file within its owner’s tree, refusing a taken or bad name', async () => {
    const dir = await mkdir('dir')
    const file = await storeFile(fx.services, ann, 'a.txt', 'hello')
    await storeFile(fx.services, ann, 'b.txt', 'other')
    const moved = await fx.services.files.update(ann, file.id, { name: 'c.txt', folderId: dir.id })
    expect(moved).toMatchObject({ name: 'c.txt', parentId: dir.id, currentVersion: 1 })
    const back = await fx.services.files.update(ann, file.id, { folderId: null })
    expect(back).toMatchObject({ name: 'c.txt', parentId: ann.rootFolderId })
    expect(await errorCodeOf(fx.services.files.update(ann, file.id, { name: 'b.txt' }))).toBe('NAME_TAKEN')
    expect(await errorCodeOf(fx.services.files.update(ann, file.id, { name: 'a/b' }))).toBe('INVALID_NAME')
    expect(await errorCodeOf(fx.services.files.update(ann, file.id, { folderId: 'x' }))).toBe(
      'INVALID_REQUEST',
    )
    const bob = await fx.user('bob')
    expect(await errorCodeOf(fx.services.files.update(ann, file.id, { folderId: bob.rootFolderId }))).toBe(
      'NOT_FOUND',
    )
    expect(await errorCodeOf(fx.services.files.get(bob, file.id))).toBe('NOT_FOUND')
  })

  it('deletes a file to the trash: gone from its folder, still counted against the quota', async () => {
    const file = await storeFile(fx.services, ann, 'a.txt', 'twelve bytes')
    expect(await usedBytes()).toBe(12)
    await fx.services.files.delete(ann, file.id)
    expect(await errorCodeOf(fx.services.files.get(ann, file.id))).toBe('NOT_FOUND')
    expect((await fx.services.files.list(ann, {})).page.items).toEqual([])
    expect(await usedBytes()).toBe(12)
  })

  it('plans the download of the current version or of an older one, and 404 for one that never was', async () => {
    const first = await storeFile(fx.services, ann, 'a.txt', 'one')
    await storeFile(fx.services, ann, 'a.txt', 'two!', { baseVersion: 1 })
    expect((await fx.services.files.planDownload(ann, first.id)).version).toMatchObject({
      version: 2,
      size: 4,
    })
    expect((await fx.services.files.planDownload(ann, first.id, 1)).version).toMatchObject({
      version: 1,
      size: 3,
    })
    expect(await errorCodeOf(fx.services.files.planDownload(ann, first.id, 3))).toBe('NOT_FOUND')
  })
})

import { describe, expect, it } from 'vitest'
import { expectAppError } from '../../test/helpers/app-error.js'
import { serviceScene, storeFile } from '../../test/helpers/service-files.js'

describe('FileService', () => {
  const s = serviceScene()

  it('lists a folder a page at a time: folders first, then files, each by name', async () => {
    const dir = await s.mkdir('dir')
    for (const name of ['b', 'a']) await s.mkdir(name, dir.id)
    for (const name of ['z.txt', 'c.txt', 'm.txt'])
      await storeFile(s.services, s.ann, name, name, { folderId: dir.id })
    const names: string[] = []
    let cursor: string | undefined
    for (let pages = 1; ; pages++) {
      const { page, path } = await s.services.files.list(s.ann, { folderId: dir.id, limit: 2, cursor })
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
    await s.mkdir('top')
    const root = await s.services.files.list(s.ann, {})
    expect(root).toMatchObject({ path: '/', folder: { id: s.ann.rootFolderId } })
    expect(root.page.items.map((item) => item.name)).toEqual(['top'])
    const bob = await s.fx.user('bob')
    await expectAppError(s.services.files.list(s.ann, { folderId: bob.rootFolderId }), 'NOT_FOUND')
    await expectAppError(s.services.files.list(s.ann, { folderId: 'nope' }), 'NOT_FOUND')
    await expectAppError(s.services.files.list(s.ann, { cursor: 'garbage' }), 'INVALID_REQUEST')
  })

  it('renames and moves a file within its owner’s tree, refusing a taken or bad name', async () => {
    const dir = await s.mkdir('dir')
    const file = await storeFile(s.services, s.ann, 'a.txt', 'hello')
    await storeFile(s.services, s.ann, 'b.txt', 'other')
    const moved = await s.services.files.update(s.ann, file.id, { name: 'c.txt', folderId: dir.id })
    expect(moved).toMatchObject({ name: 'c.txt', parentId: dir.id, currentVersion: 1 })
    const back = await s.services.files.update(s.ann, file.id, { folderId: null })
    expect(back).toMatchObject({ name: 'c.txt', parentId: s.ann.rootFolderId })
    await expectAppError(s.services.files.update(s.ann, file.id, { name: 'b.txt' }), 'NAME_TAKEN')
    await expectAppError(s.services.files.update(s.ann, file.id, { name: 'a/b' }), 'INVALID_NAME')
    await expectAppError(s.services.files.update(s.ann, file.id, { folderId: 'x' }), 'INVALID_REQUEST')
    const bob = await s.fx.user('bob')
    await expectAppError(s.services.files.update(s.ann, file.id, { folderId: bob.rootFolderId }), 'NOT_FOUND')
    await expectAppError(s.services.files.get(bob, file.id), 'NOT_FOUND')
  })

  it('deletes a file to the trash: gone from its folder, still counted against the quota', async () => {
    const file = await storeFile(s.services, s.ann, 'a.txt', 'twelve bytes')
    expect(await s.usedBytes()).toBe(12)
    await s.services.files.delete(s.ann, file.id)
    await expectAppError(s.services.files.get(s.ann, file.id), 'NOT_FOUND')
    expect((await s.services.files.list(s.ann, {})).page.items).toEqual([])
    expect(await s.usedBytes()).toBe(12)
  })

  it('plans the download of the current version or of an older one, and 404 for one that never was', async () => {
    const first = await storeFile(s.services, s.ann, 'a.txt', 'one')
    await storeFile(s.services, s.ann, 'a.txt', 'two!', { baseVersion: 1 })
    expect((await s.services.files.planDownload(s.ann, first.id)).version).toMatchObject({
      version: 2,
      size: 4,
    })
    expect((await s.services.files.planDownload(s.ann, first.id, 1)).version).toMatchObject({
      version: 1,
      size: 3,
    })
    await expectAppError(s.services.files.planDownload(s.ann, first.id, 3), 'NOT_FOUND')
  })
})

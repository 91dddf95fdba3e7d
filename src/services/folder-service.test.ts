import { describe, expect, it } from 'vitest'
import { expectAppError } from '../../test/helpers/app-error.js'
import { serviceScene, storeFile } from '../../test/helpers/service-files.js'

describe('FolderService', () => {
  const s = serviceScene()

  it('creates a folder in the root and finds it with its path', async () => {
    const created = await s.services.folders.create(s.ann, { name: 'docs' })
    const found = await s.services.folders.get(s.ann, created.node.id)
    expect(found.path).toBe('/docs')
    expect(found.node.name).toBe('docs')
  })

  it('creates folders inside folders (null parent: the root), with the path as the owner sees it', async () => {
    const photos = await s.mkdir('Photos', null)
    const year = await s.services.folders.create(s.ann, { name: '2024', parentId: photos.id })
    expect(year).toMatchObject({ path: '/Photos/2024', shareRootId: null })
    expect(year.node).toMatchObject({ parentId: photos.id, ownerId: s.ann.id, kind: 'folder' })
    expect(photos.parentId).toBe(s.ann.rootFolderId)
  })

  it('refuses a name taken in the folder (NFC-normalised, files included), but not elsewhere', async () => {
    const parent = await s.mkdir('parent')
    await s.mkdir('Café', parent.id)
    await expectAppError(s.mkdir('Café', parent.id), 'NAME_TAKEN')
    await expectAppError(s.mkdir('Cafe\u0301', parent.id), 'NAME_TAKEN')
    await storeFile(s.services, s.ann, 'report.txt', 'x', { folderId: parent.id })
    await expectAppError(s.mkdir('report.txt', parent.id), 'NAME_TAKEN')
    expect((await s.mkdir('Café')).name).toBe('Café')
  })

  it('answers INVALID_NAME for any bad name, one that is not a string or is absent included', async () => {
    for (const name of ['', '.', '..', 'a/b', 'x'.repeat(256), 42, null, undefined]) {
      await expectAppError(s.services.folders.create(s.ann, { name }), 'INVALID_NAME')
    }
  })

  it('answers a malformed parent id as a bad request, and another user’s or an unknown one as 404', async () => {
    const bob = await s.fx.user('bob')
    const bobs = (await s.services.folders.create(bob, { name: 'private' })).node
    await expectAppError(s.mkdir('n', 'not an id'), 'INVALID_REQUEST')
    await expectAppError(s.mkdir('n', bobs.id), 'NOT_FOUND')
    await expectAppError(s.services.folders.get(s.ann, bobs.id), 'NOT_FOUND')
    await expectAppError(s.services.folders.get(s.ann, 'not an id'), 'NOT_FOUND')
  })

  it('renames and moves; an absent parent stays, a null one is the root', async () => {
    const a = await s.mkdir('a')
    const b = await s.mkdir('b')
    const renamed = await s.services.folders.update(s.ann, b.id, { name: 'bee' })
    expect(renamed).toMatchObject({ path: '/bee', node: { parentId: s.ann.rootFolderId } })
    const moved = await s.services.folders.update(s.ann, b.id, { parentId: a.id })
    expect(moved.path).toBe('/a/bee')
    const back = await s.services.folders.update(s.ann, b.id, { name: 'b', parentId: null })
    expect(back.path).toBe('/b')
    await expectAppError(s.services.folders.update(s.ann, b.id, { name: 'a' }), 'NAME_TAKEN')
  })

  it('never moves a folder into itself or below itself (MOVE_INTO_SELF), nor the root anywhere', async () => {
    const a = await s.mkdir('a')
    const b = await s.mkdir('b', a.id)
    const c = await s.mkdir('c', b.id)
    for (const target of [a, b, c]) {
      await expectAppError(s.services.folders.update(s.ann, a.id, { parentId: target.id }), 'MOVE_INTO_SELF')
    }
    expect((await s.services.folders.get(s.ann, a.id)).path).toBe('/a')
    const root = s.ann.rootFolderId
    await expectAppError(s.services.folders.update(s.ann, root, { name: 'x' }), 'INVALID_REQUEST')
  })

  it('deletes a folder with everything inside to the trash, freeing its name', async () => {
    const docs = await s.mkdir('docs')
    const inner = await s.mkdir('inner', docs.id)
    await storeFile(s.services, s.ann, 'a.txt', 'hello', { folderId: inner.id })
    await s.services.folders.delete(s.ann, docs.id)
    await expectAppError(s.services.folders.get(s.ann, docs.id), 'NOT_FOUND')
    await expectAppError(s.services.folders.get(s.ann, inner.id), 'NOT_FOUND')
    const trash = await s.services.trash.list(s.ann, {})
    expect(trash.items.map((item) => [item.node.id, item.originalPath])).toEqual([[docs.id, '/docs']])
    expect((await s.mkdir('docs')).name).toBe('docs')
    await expectAppError(s.services.folders.delete(s.ann, s.ann.rootFolderId), 'INVALID_REQUEST')
  })
})

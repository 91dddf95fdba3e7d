import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { errorCodeOf, storeFile } from '../../test/helpers/service-files.js'
import { openServiceFixture, type ServiceFixture } from '../../test/helpers/service-fixture.js'
import type { User } from '../domain/model.js'

describe('FolderService', () => {
  let fx: ServiceFixture
  let ann: User
  beforeEach(async () => {
    fx = await openServiceFixture()
    ann = await fx.user('ann')
  })
  afterEach(() => fx.close())

  const mkdir = async (name: string, parentId?: string | null) =>
    (await fx.services.folders.create(ann, { name, parentId })).node

  it('creates a folder in the root and finds it with its path', async () => {
    const created = await fx.services.folders.create(ann, { name: 'docs' })
    const found = await fx.services.folders.get(ann, created.node.id)
    expect(found.path).toBe('/docs')
    expect(found.node.name).toBe('docs')
  })

  it('creates folders inside folders (null parent: the root), with the path as the owner sees it', async () => {
    const photos = await mkdir('Photos', null)
    const year = await fx.services.folders.create(ann, { name: '2024', parentId: photos.id })
    expect(year).toMatchObject({ path: '/Photos/2024', shareRootId: null })
    expect(year.node).toMatchObject({ parentId: photos.id, ownerId: ann.id, kind: 'folder' })
    expect(photos.parentId).toBe(ann.rootFolderId)
  })

  it('refuses a name taken in the folder (NFC-normalised, files included), but not elsewhere', async () => {
    const parent = await mkdir('parent')
    await mkdir('Café', parent.id)
    expect(await errorCodeOf(mkdir('Café', parent.id))).toBe('NAME_TAKEN')
    expect(await errorCodeOf(mkdir('Cafe\u0301', parent.id))).toBe('NAME_TAKEN')
    await storeFile(fx.services, ann, 'report.txt', 'x', { folderId: parent.id })
    expect(await errorCodeOf(mkdir('report.txt', parent.id))).toBe('NAME_TAKEN')
    expect((await mkdir('Café')).name).toBe('Café')
  })

  it('answers INVALID_NAME for any bad name, one that is not a string or is absent included', async () => {
    for (const name of ['', '.', '..', 'a/b', 'x'.repeat(256), 42, null, undefined]) {
      expect(await errorCodeOf(fx.services.folders.create(ann, { name })), String(name)).toBe('INVALID_NAME')
    }
  })

  it('answers a malformed parent id as a bad request, and another user’s or an unknown one as 404', async () => {
    const bob = await fx.user('bob')
    const bobs = (await fx.services.folders.create(bob, { name: 'private' })).node
    expect(await errorCodeOf(mkdir('n', 'not an id'))).toBe('INVALID_REQUEST')
    expect(await errorCodeOf(mkdir('n', bobs.id))).toBe('NOT_FOUND')
    expect(await errorCodeOf(fx.services.folders.get(ann, bobs.id))).toBe('NOT_FOUND')
    expect(await errorCodeOf(fx.services.folders.get(ann, 'not an id'))).toBe('NOT_FOUND')
  })

  it('renames and moves; an absent parent stays, a null one is the root', async () => {
    const a = await mkdir('a')
    const b = await mkdir('b')
    const renamed = await fx.services.folders.update(ann, b.id, { name: 'bee' })
    expect(renamed).toMatchObject({ path: '/bee', node: { parentId: ann.rootFolderId } })
    const moved = await fx.services.folders.update(ann, b.id, { parentId: a.id })
    expect(moved.path).toBe('/a/bee')
    const back = await fx.services.folders.update(ann, b.id, { name: 'b', parentId: null })
    expect(back.path).toBe('/b')
    expect(await errorCodeOf(fx.services.folders.update(ann, b.id, { name: 'a' }))).toBe('NAME_TAKEN')
  })

  it('never moves a folder into itself or below itself (MOVE_INTO_SELF), nor the root anywhere', async () => {
    const a = await mkdir('a')
    const b = await mkdir('b', a.id)
    const c = await mkdir('c', b.id)
    for (const target of [a, b, c]) {
      expect(await errorCodeOf(fx.services.folders.update(ann, a.id, { parentId: target.id }))).toBe(
        'MOVE_INTO_SELF',
      )
    }
    expect((await fx.services.folders.get(ann, a.id)).path).toBe('/a')
    const root = ann.rootFolderId
    expect(await errorCodeOf(fx.services.folders.update(ann, root, { name: 'x' }))).toBe('INVALID_REQUEST')
  })

  it('deletes a folder with everything inside to the trash, freeing its name', async () => {
    const docs = await mkdir('docs')
    const inner = await mkdir('inner', docs.id)
    await storeFile(fx.services, ann, 'a.txt', 'hello', { folderId: inner.id })
    await fx.services.folders.delete(ann, docs.id)
    expect(await errorCodeOf(fx.services.folders.get(ann, docs.id))).toBe('NOT_FOUND')
    expect(await errorCodeOf(fx.services.folders.get(ann, inner.id))).toBe('NOT_FOUND')
    const trash = await fx.services.trash.list(ann, {})
    expect(trash.items.map((item) => [item.node.id, item.originalPath])).toEqual([[docs.id, '/docs']])
    expect((await mkdir('docs')).name).toBe('docs')
    expect(await errorCodeOf(fx.services.folders.delete(ann, ann.rootFolderId))).toBe('INVALID_REQUEST')
  })
})

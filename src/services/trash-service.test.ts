import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { errorCodeOf, storeFile } from '../../test/helpers/service-files.js'
import { openServiceFixture, type ServiceFixture } from '../../test/helpers/service-fixture.js'
import type { User } from '../domain/model.js'

const DAY = 24 * 3_600_000
/** buildServices' trash retention when none is configured. */
const RETENTION = 30 * DAY

describe('TrashService', () => {
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
  const trashIds = async () => (await fx.services.trash.list(ann, {})).items.map((item) => item.node.id)

  it('lists what was deleted, most recent first, with where it was and when it will be purged', async () => {
    const docs = await mkdir('docs')
    const file = await storeFile(fx.services, ann, 'a.txt', 'hello', { folderId: docs.id })
    await fx.services.files.delete(ann, file.id)
    const deletedAt = fx.now()
    fx.advance(1000)
    await fx.services.folders.delete(ann, docs.id)
    const { items, nextCursor } = await fx.services.trash.list(ann, { limit: 1 })
    expect(items.map((item) => [item.node.id, item.originalPath])).toEqual([[docs.id, '/docs']])
    const rest = await fx.services.trash.list(ann, { limit: 1, cursor: nextCursor ?? undefined })
    expect(rest.items.map((item) => [item.node.id, item.originalPath, item.purgeAt])).toEqual([
      [file.id, '/docs/a.txt', deletedAt + RETENTION],
    ])
    expect(rest.nextCursor).toBeNull()
    expect(await errorCodeOf(fx.services.trash.list(ann, { cursor: 'garbage' }))).toBe('INVALID_REQUEST')
  })

  it('restores a file where it was, and a folder with its path and everything deleted with it', async () => {
    const docs = await mkdir('docs')
    const inner = await mkdir('inner', docs.id)
    const file = await storeFile(fx.services, ann, 'a.txt', 'hello', { folderId: inner.id })
    await fx.services.folders.delete(ann, docs.id)
    const restored = await fx.services.trash.restore(ann, docs.id)
    expect(restored).toMatchObject({ kind: 'folder', path: '/docs', node: { id: docs.id, deletedAt: null } })
    expect((await fx.services.files.get(ann, file.id)).parentId).toBe(inner.id)
    expect(await trashIds()).toEqual([])

    await fx.services.files.delete(ann, file.id)
    const back = await fx.services.trash.restore(ann, file.id)
    expect(back).toMatchObject({ kind: 'file', node: { id: file.id, parentId: inner.id, name: 'a.txt' } })
  })

  it('restores into the root when the folder is gone, and beside a taken name, never over it', async () => {
    const docs = await mkdir('docs')
    const file = await storeFile(fx.services, ann, 'a.txt', 'hello', { folderId: docs.id })
    await fx.services.files.delete(ann, file.id)
    await fx.services.folders.delete(ann, docs.id)
    await fx.services.trash.purge(ann, docs.id)
    await storeFile(fx.services, ann, 'a.txt', 'taken')
    const restored = await fx.services.trash.restore(ann, file.id)
    expect(restored.node).toMatchObject({ parentId: ann.rootFolderId, name: 'a (restored).txt' })
  })

  it('purges for good, giving the quota back; restore counts nothing twice', async () => {
    const keep = await storeFile(fx.services, ann, 'keep.txt', 'twelve bytes')
    const gone = await storeFile(fx.services, ann, 'gone.txt', 'five!')
    expect(await usedBytes()).toBe(17)
    await fx.services.files.delete(ann, keep.id)
    await fx.services.trash.restore(ann, keep.id)
    expect(await usedBytes()).toBe(17)
    await fx.services.files.delete(ann, gone.id)
    expect(await usedBytes()).toBe(17)
    await fx.services.trash.purge(ann, gone.id)
    expect(await usedBytes()).toBe(12)
    expect(await trashIds()).toEqual([])
    expect(await errorCodeOf(fx.services.trash.restore(ann, gone.id))).toBe('NOT_FOUND')
    expect(await errorCodeOf(fx.services.files.get(ann, gone.id))).toBe('NOT_FOUND')
  })

  it('answers 404 for what is not in the caller’s trash: live, another user’s, unknown or malformed', async () => {
    const live = await storeFile(fx.services, ann, 'a.txt', 'x')
    const bob = await fx.user('bob')
    const bobs = await storeFile(fx.services, bob, 'b.txt', 'y')
    await fx.services.files.delete(bob, bobs.id)
    for (const id of [live.id, bobs.id, ann.rootFolderId, 'not an id']) {
      expect(await errorCodeOf(fx.services.trash.restore(ann, id)), id).toBe('NOT_FOUND')
      expect(await errorCodeOf(fx.services.trash.purge(ann, id)), id).toBe('NOT_FOUND')
    }
  })

  it('empties what has been in the trash longer than the retention, freeing its quota', async () => {
    const old = await storeFile(fx.services, ann, 'old.txt', 'old')
    await fx.services.files.delete(ann, old.id)
    fx.advance(RETENTION - DAY)
    const recent = await storeFile(fx.services, ann, 'recent.txt', 'recent')
    await fx.services.files.delete(ann, recent.id)
    fx.advance(DAY + 1)
    expect(await fx.services.trash.emptyExpired()).toBe(1)
    expect(await trashIds()).toEqual([recent.id])
    expect(await usedBytes()).toBe(6)
  })
})

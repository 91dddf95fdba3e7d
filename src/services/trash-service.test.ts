import { describe, expect, it } from 'vitest'
import { expectAppError } from '../../test/helpers/app-error.js'
import { serviceScene, storeFile } from '../../test/helpers/service-files.js'

const DAY = 24 * 3_600_000
/** buildServices' trash retention when none is configured. */
const RETENTION = 30 * DAY

describe('TrashService', () => {
  const s = serviceScene()

  const trashIds = async () => (await s.services.trash.list(s.ann, {})).items.map((item) => item.node.id)

  it('lists what was deleted, most recent first, with where it was and when it will be purged', async () => {
    const docs = await s.mkdir('docs')
    const file = await storeFile(s.services, s.ann, 'a.txt', 'hello', { folderId: docs.id })
    await s.services.files.delete(s.ann, file.id)
    const deletedAt = s.fx.now()
    s.fx.advance(1000)
    await s.services.folders.delete(s.ann, docs.id)
    const { items, nextCursor } = await s.services.trash.list(s.ann, { limit: 1 })
    expect(items.map((item) => [item.node.id, item.originalPath])).toEqual([[docs.id, '/docs']])
    const rest = await s.services.trash.list(s.ann, { limit: 1, cursor: nextCursor ?? undefined })
    expect(rest.items.map((item) => [item.node.id, item.originalPath, item.purgeAt])).toEqual([
      [file.id, '/docs/a.txt', deletedAt + RETENTION],
    ])
    expect(rest.nextCursor).toBeNull()
    await expectAppError(s.services.trash.list(s.ann, { cursor: 'garbage' }), 'INVALID_REQUEST')
  })

  it('restores a file where it was, and a folder with its path and everything deleted with it', async () => {
    const docs = await s.mkdir('docs')
    const inner = await s.mkdir('inner', docs.id)
    const file = await storeFile(s.services, s.ann, 'a.txt', 'hello', { folderId: inner.id })
    await s.services.folders.delete(s.ann, docs.id)
    const restored = await s.services.trash.restore(s.ann, docs.id)
    expect(restored).toMatchObject({ kind: 'folder', path: '/docs', node: { id: docs.id, deletedAt: null } })
    expect((await s.services.files.get(s.ann, file.id)).parentId).toBe(inner.id)
    expect(await trashIds()).toEqual([])

    await s.services.files.delete(s.ann, file.id)
    const back = await s.services.trash.restore(s.ann, file.id)
    expect(back).toMatchObject({ kind: 'file', node: { id: file.id, parentId: inner.id, name: 'a.txt' } })
  })

  it('restores into the root when its folder is in the trash too, and beside a taken name, never over it', async () => {
    const docs = await s.mkdir('docs')
    const file = await storeFile(s.services, s.ann, 'a.txt', 'hello', { folderId: docs.id })
    await s.services.files.delete(s.ann, file.id)
    await s.services.folders.delete(s.ann, docs.id)
    await storeFile(s.services, s.ann, 'a.txt', 'taken')
    const restored = await s.services.trash.restore(s.ann, file.id)
    expect(restored.node).toMatchObject({ parentId: s.ann.rootFolderId, name: 'a (restored).txt' })
  })

  it('purges for good, giving the quota back; restore counts nothing twice', async () => {
    const keep = await storeFile(s.services, s.ann, 'keep.txt', 'twelve bytes')
    const gone = await storeFile(s.services, s.ann, 'gone.txt', 'five!')
    expect(await s.usedBytes()).toBe(17)
    await s.services.files.delete(s.ann, keep.id)
    await s.services.trash.restore(s.ann, keep.id)
    expect(await s.usedBytes()).toBe(17)
    await s.services.files.delete(s.ann, gone.id)
    expect(await s.usedBytes()).toBe(17)
    await s.services.trash.purge(s.ann, gone.id)
    expect(await s.usedBytes()).toBe(12)
    expect(await trashIds()).toEqual([])
    await expectAppError(s.services.trash.restore(s.ann, gone.id), 'NOT_FOUND')
    await expectAppError(s.services.files.get(s.ann, gone.id), 'NOT_FOUND')
  })

  it('answers 404 for what is not in the caller’s trash: live, another user’s, unknown or malformed', async () => {
    const live = await storeFile(s.services, s.ann, 'a.txt', 'x')
    const bob = await s.fx.user('bob')
    const bobs = await storeFile(s.services, bob, 'b.txt', 'y')
    await s.services.files.delete(bob, bobs.id)
    for (const id of [live.id, bobs.id, s.ann.rootFolderId, 'not an id']) {
      await expectAppError(s.services.trash.restore(s.ann, id), 'NOT_FOUND')
      await expectAppError(s.services.trash.purge(s.ann, id), 'NOT_FOUND')
    }
  })

  it('empties what has been in the trash longer than the retention, freeing its quota', async () => {
    const old = await storeFile(s.services, s.ann, 'old.txt', 'old')
    await s.services.files.delete(s.ann, old.id)
    s.fx.advance(RETENTION - DAY)
    const recent = await storeFile(s.services, s.ann, 'recent.txt', 'recent')
    await s.services.files.delete(s.ann, recent.id)
    s.fx.advance(DAY + 1)
    expect(await s.services.trash.emptyExpired()).toBe(1)
    expect(await trashIds()).toEqual([recent.id])
    expect(await s.usedBytes()).toBe(6)
  })
})

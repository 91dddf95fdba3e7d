import { randomUUID } from 'node:crypto'
import { beforeAll, describe, expect, it } from 'vitest'
import type { ApiClient } from '../helpers/api-client.js'
import { DATABASES } from '../helpers/databases.js'
import { serverWithUsers } from '../helpers/test-server.js'

describe.each(DATABASES)('folders on %s', ({ name: backend, available }) => {
  const setup = serverWithUsers(backend, available, 2)
  let ann: ApiClient
  let bob: ApiClient
  beforeAll(() => {
    ;[ann, bob] = setup.users as [ApiClient, ApiClient]
  })

  it.skipIf(!available)('creates nested folders with paths, gets, renames and moves them', async () => {
    const photos = await ann.post('/folders', { name: 'Photos' })
    expect(photos.status).toBe(201)
    expect(photos.body).toMatchObject({ name: 'Photos', parentId: null, path: '/Photos' })
    const year = await ann.post('/folders', { name: '2024', parentId: photos.body.id })
    expect(year.body).toMatchObject({ name: '2024', parentId: photos.body.id, path: '/Photos/2024' })

    const got = await ann.get(`/folders/${year.body.id}`)
    expect(got.status).toBe(200)
    expect(got.body).toEqual(year.body)

    const renamed = await ann.patch(`/folders/${photos.body.id}`, { name: 'Pictures' })
    expect(renamed.status).toBe(200)
    expect(renamed.body.path).toBe('/Pictures')
    expect((await ann.get(`/folders/${year.body.id}`)).body.path).toBe('/Pictures/2024')

    const moved = await ann.patch(`/folders/${year.body.id}`, { parentId: null })
    expect(moved.body).toMatchObject({ parentId: null, path: '/2024' })
  })

  it.skipIf(!available)('never moves a folder into itself or its own subtree (409)', async () => {
    const a = (await ann.post('/folders', { name: 'a' })).body
    const b = (await ann.post('/folders', { name: 'b', parentId: a.id })).body
    const c = (await ann.post('/folders', { name: 'c', parentId: b.id })).body
    for (const target of [a, b, c]) {
      const reply = await ann.patch(`/folders/${a.id}`, { parentId: target.id })
      expect(reply.status).toBe(409)
      expect(reply.body.error.code).toBe('MOVE_INTO_SELF')
    }
    expect((await ann.get(`/folders/${a.id}`)).body.parentId).toBeNull()
  })

  it.skipIf(!available)(
    'keeps sibling names unique across folders and files, case-sensitively, in NFC',
    async () => {
      const parent = (await ann.post('/folders', { name: 'unique-test' })).body
      expect((await ann.post('/folders', { name: 'Docs', parentId: parent.id })).status).toBe(201)
      const clash = await ann.post('/folders', { name: 'Docs', parentId: parent.id })
      expect(clash.status).toBe(409)
      expect(clash.body.error.code).toBe('NAME_TAKEN')
      await ann.upload('report.txt', Buffer.from('hello'), { folderId: parent.id })
      const folderOverFile = await ann.post('/folders', { name: 'report.txt', parentId: parent.id })
      expect(folderOverFile.status).toBe(409)

      // "é" typed as e + combining accent (NFD, as macOS sends it) is stored as NFC.
      const nfd = 'Cafe\u0301'
      const created = await ann.post('/folders', { name: nfd, parentId: parent.id })
      expect(created.body.name).toBe('Caf\u00e9')
      expect((await ann.post('/folders', { name: 'Caf\u00e9', parentId: parent.id })).status).toBe(409)

      const other = (await ann.post('/folders', { name: 'Other', parentId: parent.id })).body
      const renameClash = await ann.patch(`/folders/${other.id}`, { name: 'Docs' })
      expect(renameClash.status).toBe(409)
    },
  )

  it.skipIf(!available)('rejects bad names with 400 INVALID_NAME', async () => {
    for (const name of ['', '.', '..', 'a/b', 'nul\0byte', 'x'.repeat(256), '\u00e9'.repeat(128), 42, null]) {
      const reply = await ann.post('/folders', { name })
      expect(reply.status, JSON.stringify(name)).toBe(400)
      expect(reply.body.error.code).toBe('INVALID_NAME')
    }
    expect((await ann.post('/folders', { name: 'x'.repeat(255) })).status).toBe(201)
  })

  it.skipIf(!available)('deletes a folder with everything inside, and frees its name', async () => {
    const top = (await ann.post('/folders', { name: 'to-delete' })).body
    const inner = (await ann.post('/folders', { name: 'inner', parentId: top.id })).body
    const file = await ann.upload('deep.txt', Buffer.from('deep'), { folderId: inner.id })
    expect((await ann.delete(`/folders/${top.id}`)).status).toBe(204)
    expect((await ann.get(`/folders/${top.id}`)).status).toBe(404)
    expect((await ann.get(`/folders/${inner.id}`)).status).toBe(404)
    expect((await ann.get(`/files/${file.id}`)).status).toBe(404)
    expect((await ann.download(file.id)).status).toBe(404)
    expect((await ann.post('/folders', { name: 'to-delete' })).status).toBe(201)
  })

  it.skipIf(!available)("answers 404 for another user's, unknown and malformed ids alike", async () => {
    const mine = (await ann.post('/folders', { name: 'private' })).body
    for (const id of [mine.id, randomUUID(), 'not-an-id', '../../etc']) {
      for (const reply of [
        await bob.get(`/folders/${encodeURIComponent(id)}`),
        await bob.patch(`/folders/${encodeURIComponent(id)}`, { name: 'x' }),
        await bob.delete(`/folders/${encodeURIComponent(id)}`),
      ]) {
        expect(reply.status).toBe(404)
        expect(reply.body.error.code).toBe('NOT_FOUND')
      }
    }
    const intoForeign = await bob.post('/folders', { name: 'sneaky', parentId: mine.id })
    expect(intoForeign.status).toBe(404)
    const malformedParent = await bob.post('/folders', { name: 'sneaky', parentId: 'nope' })
    expect(malformedParent.status).toBe(400)
    expect((await ann.get(`/folders/${mine.id}`)).body.name).toBe('private')
  })
})

import { randomBytes, randomUUID } from 'node:crypto'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { copiesOnDisk, rowCopyOnDisk } from '../gc/gc-helpers.js'
import { ApiClient, CHUNK, chunksOf, sha256 } from '../helpers/api-client.js'
import { DATABASES } from '../helpers/databases.js'
import { startTestServer, type TestServer } from '../helpers/test-server.js'

const GRACE_SECONDS = 60
/** No background upkeep: the tests run the collector and the trash emptying themselves. */
const QUIET = { GC_GRACE_SECONDS: String(GRACE_SECONDS), GC_INTERVAL_SECONDS: '0' }
const HOUR = 3600_000
const DAY = 24 * HOUR

const trashOf = async (client: ApiClient): Promise<any[]> => {
  const reply = await client.get('/trash')
  expect(reply.status).toBe(200)
  expect(reply.body.nextCursor).toBeNull()
  return reply.body.items
}
const trashIds = async (client: ApiClient): Promise<string[]> =>
  (await trashOf(client)).map((item) => item.id)
const restore = (client: ApiClient, id: string) => client.post(`/trash/${id}/restore`)
const purge = (client: ApiClient, id: string) => client.delete(`/trash/${id}`)
const namesIn = async (client: ApiClient, folderId: string | null): Promise<string[]> => {
  const reply = await client.get(`/files${folderId ? `?folderId=${folderId}` : ''}`)
  expect(reply.status).toBe(200)
  return reply.body.items.map((item: any) => item.name)
}

function expectBytes(reply: { status: number; body: Buffer }, bytes: Buffer): void {
  expect(reply.status).toBe(200)
  expect(sha256(reply.body)).toBe(sha256(bytes))
}

function expectNotFound(reply: { status: number; body: any }): void {
  expect(reply.status).toBe(404)
  expect(reply.body).toMatchObject({ error: { code: 'NOT_FOUND' } })
}

const TRASH_ITEM_KEYS = ['deletedAt', 'folderId', 'id', 'name', 'originalPath', 'purgeAt', 'size', 'type']

describe.each(DATABASES)('trash on %s', ({ name: backend, available }) => {
  let server: TestServer
  let bob: ApiClient
  const fresh = () => new ApiClient(server.api).register()
  const mkdir = async (client: ApiClient, name: string, parentId: string | null = null) => {
    const reply = await client.post('/folders', { name, parentId })
    expect(reply.status).toBe(201)
    return reply.body
  }

  beforeAll(async () => {
    if (!available) return
    server = await startTestServer(backend, QUIET)
    bob = await fresh()
  })
  afterAll(async () => server?.stop())

  it.skipIf(!available)(
    'keeps a deleted file, still counted, and restores it in place with its history',
    async () => {
      const ann = await fresh()
      const docs = await mkdir(ann, 'Docs')
      const v1 = randomBytes(2000)
      const v2 = randomBytes(700)
      await ann.upload('report.txt', v1, { folderId: docs.id })
      const file = await ann.upload('report.txt', v2, { folderId: docs.id })
      expect(await ann.usedBytes()).toBe(700)

      expect((await ann.delete(`/files/${file.id}`)).status).toBe(204)
      expectNotFound(await ann.get(`/files/${file.id}`))
      expectNotFound(await ann.download(file.id))
      expect(await namesIn(ann, docs.id)).toEqual([])
      expect(await ann.usedBytes()).toBe(700)

      const items = await trashOf(ann)
      expect(items).toHaveLength(1)
      const item = items[0]
      expect(Object.keys(item).sort()).toEqual(TRASH_ITEM_KEYS)
      expect(item).toEqual({
        type: 'file',
        id: file.id,
        name: 'report.txt',
        size: 700,
        folderId: docs.id,
        originalPath: '/Docs/report.txt',
        deletedAt: item.deletedAt,
        purgeAt: new Date(Date.parse(item.deletedAt) + 30 * DAY).toISOString(),
      })
      expect(Date.parse(item.deletedAt)).toBeGreaterThanOrEqual(Date.parse(file.updatedAt))
      expect(await trashOf(bob)).toEqual([])

      const restored = await restore(ann, file.id)
      expect(restored.status).toBe(200)
      const { type, ...restoredFile } = restored.body
      expect(type).toBe('file')
      expect(restoredFile).toEqual({ ...file, updatedAt: restoredFile.updatedAt })
      expect((await ann.get(`/files/${file.id}`)).body).toEqual(restoredFile)
      expect(await namesIn(ann, docs.id)).toEqual(['report.txt'])
      expectBytes(await ann.download(file.id), v2)
      const versions = (await ann.get(`/files/${file.id}/versions`)).body.versions
      expect(versions.map((v: any) => v.version)).toEqual([2, 1])
      expectBytes(await ann.get<Buffer>(`/files/${file.id}/versions/1/download`), v1)
      expect(await trashOf(ann)).toEqual([])
      expect(await ann.usedBytes()).toBe(700)
      // It is live again, so not in the trash any more.
      expectNotFound(await restore(ann, file.id))
      expectNotFound(await purge(ann, file.id))
      expectBytes(await ann.download(file.id), v2)
    },
  )

  it.skipIf(!available)(
    'lists and restores a deleted folder as one item, with everything in it',
    async () => {
      const ann = await fresh()
      const projects = await mkdir(ann, 'Projects')
      const inner = await mkdir(ann, 'Inner', projects.id)
      const xBytes = randomBytes(300)
      const yBytes = randomBytes(CHUNK + 10)
      const x = await ann.upload('x.bin', xBytes, { folderId: inner.id })
      const y = await ann.upload('y.bin', yBytes, { folderId: projects.id })
      const total = xBytes.length + yBytes.length
      expect(await ann.usedBytes()).toBe(total)

      expect((await ann.delete(`/folders/${projects.id}`)).status).toBe(204)
      expectNotFound(await ann.get(`/folders/${projects.id}`))
      expectNotFound(await ann.get(`/folders/${inner.id}`))
      expectNotFound(await ann.get(`/files/${x.id}`))
      expect(await namesIn(ann, null)).toEqual([])
      expect(await ann.usedBytes()).toBe(total)

      const items = await trashOf(ann)
      expect(items).toEqual([
        {
          type: 'folder',
          id: projects.id,
          name: 'Projects',
          size: total,
          folderId: null,
          originalPath: '/Projects',
          deletedAt: items[0].deletedAt,
          purgeAt: new Date(Date.parse(items[0].deletedAt) + 30 * DAY).toISOString(),
        },
      ])
      // What went with the folder is not a trash item of its own.
      for (const child of [inner.id, x.id, y.id]) {
        expectNotFound(await restore(ann, child))
        expectNotFound(await purge(ann, child))
      }
      expect(await trashIds(ann)).toEqual([projects.id])

      const restored = await restore(ann, projects.id)
      expect(restored.status).toBe(200)
      const { type, ...folder } = restored.body
      expect(type).toBe('folder')
      expect(folder).toEqual({ ...projects, updatedAt: folder.updatedAt })
      expect((await ann.get(`/folders/${projects.id}`)).body).toEqual(folder)
      expect((await ann.get(`/folders/${inner.id}`)).body).toMatchObject({ path: '/Projects/Inner' })
      expect(await namesIn(ann, projects.id)).toEqual(['Inner', 'y.bin'])
      expect(await namesIn(ann, inner.id)).toEqual(['x.bin'])
      expectBytes(await ann.download(x.id), xBytes)
      expectBytes(await ann.download(y.id), yBytes)
      expect(await trashOf(ann)).toEqual([])
      expect(await ann.usedBytes()).toBe(total)
    },
  )

  it.skipIf(!available)(
    'nested: a file deleted before its folder stays in the trash when the folder comes back',
    async () => {
      const ann = await fresh()
      const folder = await mkdir(ann, 'F')
      const earlyBytes = randomBytes(111)
      const keepBytes = randomBytes(222)
      const early = await ann.upload('early.txt', earlyBytes, { folderId: folder.id })
      const keep = await ann.upload('keep.txt', keepBytes, { folderId: folder.id })

      expect((await ann.delete(`/files/${early.id}`)).status).toBe(204)
      server.advance(1000)
      expect((await ann.delete(`/folders/${folder.id}`)).status).toBe(204)
      expect(await ann.usedBytes()).toBe(333)
      const items = await trashOf(ann)
      // Most recently deleted first; the folder's size is what was deleted with it.
      expect(
        items.map((item) => [item.type, item.name, item.size, item.folderId, item.originalPath]),
      ).toEqual([
        ['folder', 'F', 222, null, '/F'],
        ['file', 'early.txt', 111, folder.id, '/F/early.txt'],
      ])
      expect(Date.parse(items[0].deletedAt) - Date.parse(items[1].deletedAt)).toBeGreaterThanOrEqual(1000)

      const restoredFolder = await restore(ann, folder.id)
      expect(restoredFolder.status).toBe(200)
      expect(restoredFolder.body).toMatchObject({ type: 'folder', id: folder.id, name: 'F', path: '/F' })
      expect(await namesIn(ann, folder.id)).toEqual(['keep.txt'])
      expectBytes(await ann.download(keep.id), keepBytes)
      expectNotFound(await ann.get(`/files/${early.id}`))
      expect(await trashOf(ann)).toEqual([
        expect.objectContaining({
          type: 'file',
          id: early.id,
          folderId: folder.id,
          originalPath: '/F/early.txt',
        }),
      ])

      const restoredFile = await restore(ann, early.id)
      expect(restoredFile.status).toBe(200)
      expect(restoredFile.body).toMatchObject({
        type: 'file',
        id: early.id,
        name: 'early.txt',
        folderId: folder.id,
      })
      expect(await namesIn(ann, folder.id)).toEqual(['early.txt', 'keep.txt'])
      expectBytes(await ann.download(early.id), earlyBytes)
      expect(await trashOf(ann)).toEqual([])
      expect(await ann.usedBytes()).toBe(333)
    },
  )

  it.skipIf(!available)(
    "purging a folder removes what was deleted from it earlier; the chunks are collected, others' survive",
    async () => {
      const ann = await fresh()
      const folder = await mkdir(ann, 'F')
      const shared = randomBytes(CHUNK)
      const earlyBytes = Buffer.concat([shared, randomBytes(100)])
      const keepBytes = randomBytes(250)
      const early = await ann.upload('early.bin', earlyBytes, { folderId: folder.id })
      const earlyV2 = Buffer.concat([shared, randomBytes(101)])
      await ann.upload('early.bin', earlyV2, { folderId: folder.id })
      const keep = await ann.upload('keep.bin', keepBytes, { folderId: folder.id })
      const bobs = Buffer.concat([shared, randomBytes(10)])
      const bobFile = await bob.upload('copy.bin', bobs)
      const bobUsed = await bob.usedBytes()
      const earlySize = CHUNK + 101
      expect(await ann.usedBytes()).toBe(earlySize + 250)

      await ann.delete(`/files/${early.id}`)
      server.advance(1000)
      await ann.delete(`/folders/${folder.id}`)
      expect(await ann.usedBytes()).toBe(earlySize + 250)

      const purged = await purge(ann, folder.id)
      expect(purged.status).toBe(204)
      expect(purged.body.length).toBe(0)
      expect(await trashOf(ann)).toEqual([])
      expect(await ann.usedBytes()).toBe(0)
      for (const id of [folder.id, early.id, keep.id]) {
        expectNotFound(await restore(ann, id))
        expectNotFound(await purge(ann, id))
      }
      expectNotFound(await ann.get(`/files/${early.id}/versions`))
      expectNotFound(await ann.get(`/folders/${folder.id}`))

      // Both versions of the file deleted first, and the file deleted with the folder.
      const garbage = [
        sha256(chunksOf(earlyBytes)[1] as Buffer),
        sha256(chunksOf(earlyV2)[1] as Buffer),
        sha256(keepBytes),
      ]
      for (const hash of garbage) expect((await server.services.meta.chunks.find(hash))?.refCount).toBe(0)
      expect((await server.services.meta.chunks.find(sha256(shared)))?.refCount).toBe(1)

      // The first run marks; the bytes stay for the grace period, whatever runs meanwhile.
      await server.services.gc.run()
      await server.services.gc.run()
      for (const hash of garbage) expect(await rowCopyOnDisk(server, hash)).toBe(true)
      server.advance((GRACE_SECONDS + 1) * 1000)
      const report = await server.services.gc.run()
      expect(report.errors).toEqual([])
      for (const hash of garbage) {
        expect(await copiesOnDisk(server.dataDir, hash)).toEqual([])
        expect(await server.services.meta.chunks.find(hash)).toBeNull()
      }
      expect(await rowCopyOnDisk(server, sha256(shared))).toBe(true)
      expectBytes(await bob.download(bobFile.id), bobs)
      expect(await bob.usedBytes()).toBe(bobUsed)
      expect((await server.services.scrubber.run()).clean).toBe(true)
    },
  )

  it.skipIf(!available)(
    "restores into the root when the item's folder is gone, and purging that folder later spares it",
    async () => {
      const ann = await fresh()
      const folder = await mkdir(ann, 'Gone')
      const bytes = randomBytes(77)
      const file = await ann.upload('orphan.txt', bytes, { folderId: folder.id })
      const sibling = await ann.upload('sibling.txt', randomBytes(5), { folderId: folder.id })
      await ann.delete(`/files/${file.id}`)
      server.advance(1000)
      await ann.delete(`/folders/${folder.id}`)
      expect(await namesIn(ann, null)).toEqual([])

      const restored = await restore(ann, file.id)
      expect(restored.status).toBe(200)
      expect(restored.body).toMatchObject({ type: 'file', id: file.id, name: 'orphan.txt', folderId: null })
      expect((await ann.get(`/files/${file.id}`)).body.folderId).toBeNull()
      expect(await namesIn(ann, null)).toEqual(['orphan.txt'])
      expectBytes(await ann.download(file.id), bytes)
      expect(await trashIds(ann)).toEqual([folder.id])

      // The folder is purged: the file restored out of it is not taken along.
      expect((await purge(ann, folder.id)).status).toBe(204)
      expectNotFound(await ann.get(`/files/${sibling.id}`))
      expectBytes(await ann.download(file.id), bytes)
      expect(await ann.usedBytes()).toBe(77)
      expect(await trashOf(ann)).toEqual([])

      // Deleted again: its folder is now purged for good, so it comes back in the root.
      await ann.delete(`/files/${file.id}`)
      expect((await trashOf(ann))[0]).toMatchObject({
        id: file.id,
        folderId: null,
        originalPath: '/orphan.txt',
      })
      expect((await restore(ann, file.id)).body).toMatchObject({ type: 'file', folderId: null })
    },
  )

  it.skipIf(!available)(
    "restores as 'name (restored).ext' when the name is taken now, never replacing anything",
    async () => {
      const ann = await fresh()
      const contents = [randomBytes(10), randomBytes(20), randomBytes(30)]
      const first = await ann.upload('notes.txt', contents[0] as Buffer)
      await ann.delete(`/files/${first.id}`)
      const second = await ann.upload('notes.txt', contents[1] as Buffer)
      expect(second.id).not.toBe(first.id)
      expect(second.version).toBe(1)
      await ann.delete(`/files/${second.id}`)
      const third = await ann.upload('notes.txt', contents[2] as Buffer)
      expect(await namesIn(ann, null)).toEqual(['notes.txt'])

      const a = await restore(ann, first.id)
      expect(a.status).toBe(200)
      expect(a.body).toMatchObject({
        type: 'file',
        id: first.id,
        name: 'notes (restored).txt',
        folderId: null,
      })
      const b = await restore(ann, second.id)
      expect(b.body).toMatchObject({ type: 'file', id: second.id, name: 'notes (restored 2).txt' })
      expect(await namesIn(ann, null)).toEqual([
        'notes (restored 2).txt',
        'notes (restored).txt',
        'notes.txt',
      ])
      expectBytes(await ann.download(first.id), contents[0] as Buffer)
      expectBytes(await ann.download(second.id), contents[1] as Buffer)
      expectBytes(await ann.download(third.id), contents[2] as Buffer)
      expect(await ann.usedBytes()).toBe(60)

      // A folder's name has no extension to keep; its contents come back with it.
      const photos = await mkdir(ann, 'Photos 2024.06')
      const pic = await ann.upload('a.jpg', randomBytes(40), { folderId: photos.id })
      await ann.delete(`/folders/${photos.id}`)
      const newPhotos = await mkdir(ann, 'Photos 2024.06')
      const folder = await restore(ann, photos.id)
      expect(folder.status).toBe(200)
      expect(folder.body).toMatchObject({
        type: 'folder',
        id: photos.id,
        name: 'Photos 2024.06 (restored)',
        parentId: null,
        path: '/Photos 2024.06 (restored)',
      })
      expect((await ann.get(`/files/${pic.id}`)).body.folderId).toBe(photos.id)
      expect(await namesIn(ann, newPhotos.id)).toEqual([])

      // Inside a folder too, and for a name without an extension.
      const sub = await mkdir(ann, 'Build')
      const makefile = await ann.upload('Makefile', Buffer.from('all:'), { folderId: sub.id })
      await ann.delete(`/files/${makefile.id}`)
      await ann.upload('Makefile', Buffer.from('all: new'), { folderId: sub.id })
      expect((await restore(ann, makefile.id)).body).toMatchObject({
        name: 'Makefile (restored)',
        folderId: sub.id,
      })
      expect(await namesIn(ann, sub.id)).toEqual(['Makefile', 'Makefile (restored)'])
      expect((await ann.download(makefile.id)).body.toString()).toBe('all:')

      // A name of the longest length allowed is shortened to fit, keeping its extension.
      const longName = `${'é'.repeat(125)}a.txt` // 255 bytes
      const long = await ann.upload(longName, Buffer.from('long'))
      await ann.delete(`/files/${long.id}`)
      await ann.upload(longName, Buffer.from('new'))
      const longRestored = await restore(ann, long.id)
      expect(longRestored.status).toBe(200)
      expect(longRestored.body.name).toBe(`${'é'.repeat(120)} (restored).txt`)
      expect(Buffer.byteLength(longRestored.body.name)).toBeLessThanOrEqual(255)
    },
  )

  it.skipIf(!available)('pages the trash, most recently deleted first, with an opaque cursor', async () => {
    const ann = await fresh()
    const deleted: string[] = []
    for (let i = 0; i < 5; i++) {
      const file = await ann.upload(`f${i}.txt`, Buffer.from(`file ${i}`))
      await ann.delete(`/files/${file.id}`)
      deleted.push(file.id)
      server.advance(1000)
    }
    const dir = await mkdir(ann, 'dir')
    for (let i = 0; i < 3; i++) await ann.upload(`child${i}.txt`, Buffer.from('c'), { folderId: dir.id })
    await ann.delete(`/folders/${dir.id}`)
    deleted.push(dir.id)
    const expected = [...deleted].reverse()

    const seen: any[] = []
    let cursor: string | null = null
    let pages = 0
    do {
      const query: string = `/trash?limit=2${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`
      const page = await ann.get(query)
      expect(page.status).toBe(200)
      expect(page.body.items.length).toBeLessThanOrEqual(2)
      seen.push(...page.body.items)
      cursor = page.body.nextCursor
      pages++
    } while (cursor)
    expect(pages).toBe(3)
    expect(seen.map((item) => item.id)).toEqual(expected)
    expect(seen[0]).toMatchObject({ type: 'folder', name: 'dir', size: 3 })
    const times = seen.map((item) => Date.parse(item.deletedAt))
    expect([...times].sort((x, y) => y - x)).toEqual(times)
    expect((await ann.get('/trash?limit=100')).body.items.map((item: any) => item.id)).toEqual(expected)

    expect((await ann.get('/trash?cursor=garbage')).status).toBe(400)
    expect((await ann.get('/trash?limit=0')).status).toBe(400)
    expect((await ann.get('/trash?limit=abc')).status).toBe(400)
    expect(await trashOf(bob)).toEqual([])
  })

  it.skipIf(!available)(
    "answers 404 for another user's, unknown, malformed and live ids, and for a trashed folder's children",
    async () => {
      const ann = await fresh()
      const liveFile = await ann.upload('live.txt', Buffer.from('live'))
      const liveFolder = await mkdir(ann, 'live')
      const trashed = await ann.upload('trashed.txt', Buffer.from('trashed'))
      await ann.delete(`/files/${trashed.id}`)
      const box = await mkdir(ann, 'box')
      const inBox = await ann.upload('in-box.txt', Buffer.from('in box'), { folderId: box.id })
      await ann.delete(`/folders/${box.id}`)
      const before = await trashOf(ann)

      for (const [client, id] of [
        [bob, trashed.id],
        [bob, box.id],
        [ann, randomUUID()],
        [ann, 'garbage'],
        [ann, liveFile.id],
        [ann, liveFolder.id],
        [ann, inBox.id],
      ] as Array<[ApiClient, string]>) {
        expectNotFound(await restore(client, id))
        expectNotFound(await purge(client, id))
      }
      // Nothing was restored or purged by any of those.
      expect(await trashOf(ann)).toEqual(before)
      expectBytes(await ann.download(liveFile.id), Buffer.from('live'))
      expect((await ann.get(`/folders/${liveFolder.id}`)).status).toBe(200)
      expect(await ann.usedBytes()).toBe(4 + 7 + 6)
    },
  )
})

describe.each(DATABASES)('trash retention on %s', ({ name: backend, available }) => {
  let server: TestServer
  beforeAll(async () => {
    if (!available) return
    server = await startTestServer(backend, { ...QUIET, TRASH_RETENTION_DAYS: '1' })
  })
  afterAll(async () => server?.stop())

  it.skipIf(!available)('empties items older than TRASH_RETENTION_DAYS and frees their quota', async () => {
    const ann = await new ApiClient(server.api).register()
    const oldBytes = randomBytes(1000)
    const old = await ann.upload('old.bin', oldBytes)
    const folder = await ann.post('/folders', { name: 'later' })
    await ann.upload('inside.bin', randomBytes(300), { folderId: folder.body.id })
    const keptBytes = randomBytes(50)
    const kept = await ann.upload('kept.bin', keptBytes)
    await ann.delete(`/files/${old.id}`)
    const [item] = await trashOf(ann)
    expect(Date.parse(item.purgeAt) - Date.parse(item.deletedAt)).toBe(DAY)

    server.advance(12 * HOUR)
    await ann.delete(`/folders/${folder.body.id}`)
    expect(await server.services.trash.emptyExpired()).toBe(0)
    expect(await trashIds(ann)).toEqual([folder.body.id, old.id])
    expect(await ann.usedBytes()).toBe(1350)

    server.advance(12 * HOUR + 1000)
    expect(await server.services.trash.emptyExpired()).toBe(1)
    expect(await trashIds(ann)).toEqual([folder.body.id])
    expect(await ann.usedBytes()).toBe(350)
    expectNotFound(await restore(ann, old.id))
    expect((await server.services.meta.chunks.find(sha256(oldBytes)))?.refCount).toBe(0)

    server.advance(12 * HOUR)
    expect(await server.services.trash.emptyExpired()).toBe(1)
    expect(await trashOf(ann)).toEqual([])
    expect(await ann.usedBytes()).toBe(50)
    expectBytes(await ann.download(kept.id), keptBytes)
  })
})

import { randomBytes, randomUUID } from 'node:crypto'
import { beforeAll, describe, expect, it } from 'vitest'
import { ApiClient, CHUNK } from '../helpers/api-client.js'
import { DATABASES } from '../helpers/databases.js'
import { serverWithUsers, type TestServer } from '../helpers/test-server.js'

describe.each(DATABASES)('files on %s', ({ name: backend, available }) => {
  const setup = serverWithUsers(backend, available, 2)
  let server: TestServer
  let ann: ApiClient
  let bob: ApiClient
  beforeAll(() => {
    server = setup.server
    ;[ann, bob] = setup.users as [ApiClient, ApiClient]
  })

  it.skipIf(!available)(
    'lists folders first, then files, by name, across pages with an opaque cursor',
    async () => {
      const dir = (await ann.post('/folders', { name: 'listing' })).body
      const folderNames = Array.from({ length: 60 }, (_, i) => `dir-${String(i).padStart(3, '0')}`)
      const fileNames = Array.from({ length: 90 }, (_, i) => `file-${String(i).padStart(3, '0')}.txt`)
      for (const name of [...folderNames].reverse()) await ann.post('/folders', { name, parentId: dir.id })
      for (const name of [...fileNames].reverse())
        await ann.upload(name, Buffer.from(name), { folderId: dir.id })

      const seen: any[] = []
      let cursor: string | null = null
      let pages = 0
      do {
        const query: string = `/files?folderId=${dir.id}&limit=40${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`
        const page = await ann.get(query)
        expect(page.status).toBe(200)
        expect(page.body.folder).toMatchObject({ id: dir.id, name: 'listing', path: '/listing' })
        expect(page.body.items.length).toBeLessThanOrEqual(40)
        seen.push(...page.body.items)
        cursor = page.body.nextCursor
        pages++
      } while (cursor)
      expect(pages).toBe(4)
      expect(seen.map((item) => item.name)).toEqual([...folderNames, ...fileNames])
      expect(seen[0]).toMatchObject({ type: 'folder', size: null })
      expect(seen[60]).toMatchObject({ type: 'file', size: 12, version: 1 })
      expect(Object.keys(seen[60]).sort()).toEqual(['id', 'name', 'size', 'type', 'updatedAt', 'version'])

      const bad = await ann.get(`/files?folderId=${dir.id}&cursor=garbage`)
      expect(bad.status).toBe(400)
      expect((await ann.get(`/files?folderId=${dir.id}&limit=0`)).status).toBe(400)
      expect((await ann.get(`/files?folderId=${dir.id}&limit=abc`)).status).toBe(400)
    },
  )

  it.skipIf(!available)('shows every change in the next listing, however often it was listed', async () => {
    const dir = (await ann.post('/folders', { name: 'fresh-listing' })).body
    const names = async () =>
      (await ann.get(`/files?folderId=${dir.id}`)).body.items.map((i: any) => `${i.name}:${i.size}`)
    const file = await ann.upload('a.txt', Buffer.from('1'), { folderId: dir.id })
    expect(await names()).toEqual(['a.txt:1'])
    expect(await names()).toEqual(['a.txt:1'])
    await ann.patch(`/files/${file.id}`, { name: 'b.txt' })
    expect(await names()).toEqual(['b.txt:1'])
    await ann.upload('b.txt', Buffer.from('22'), { folderId: dir.id })
    expect(await names()).toEqual(['b.txt:2'])
    const sub = (await ann.post('/folders', { name: 'sub', parentId: dir.id })).body
    expect(await names()).toEqual(['sub:null', 'b.txt:2'])
    await ann.patch(`/files/${file.id}`, { folderId: sub.id })
    expect(await names()).toEqual(['sub:null'])
    await ann.delete(`/folders/${sub.id}`)
    expect(await names()).toEqual([])
  })

  it.skipIf(!available)('lists the root when folderId is absent', async () => {
    const carol = await new ApiClient(server.api).register()
    await carol.upload('b.txt', Buffer.from('b'))
    await carol.post('/folders', { name: 'z-folder' })
    await carol.upload('a.txt', Buffer.from('a'))
    const root = await carol.get('/files')
    expect(root.body.folder).toMatchObject({ parentId: null, path: '/' })
    expect(root.body.items.map((item: any) => item.name)).toEqual(['z-folder', 'a.txt', 'b.txt'])
    expect(root.body.nextCursor).toBeNull()
  })

  it.skipIf(!available)('gets, renames, moves and deletes a file', async () => {
    const dir = (await ann.post('/folders', { name: 'moves' })).body
    const file = await ann.upload('draft.txt', Buffer.from('draft'))
    const got = await ann.get(`/files/${file.id}`)
    expect(got.body).toEqual(file)
    expect(Object.keys(got.body).sort()).toEqual(
      ['contentHash', 'createdAt', 'folderId', 'id', 'name', 'size', 'updatedAt', 'version'].sort(),
    )
    const renamed = await ann.patch(`/files/${file.id}`, { name: 'final.txt' })
    expect(renamed.body).toMatchObject({ name: 'final.txt', folderId: null, version: 1 })
    const moved = await ann.patch(`/files/${file.id}`, { folderId: dir.id })
    expect(moved.body.folderId).toBe(dir.id)
    await ann.upload('final.txt', Buffer.from('other'))
    const clash = await ann.patch(`/files/${file.id}`, { folderId: null })
    expect(clash.status).toBe(409)
    expect(clash.body.error.code).toBe('NAME_TAKEN')
    expect((await ann.patch(`/files/${file.id}`, { name: 'bad/name' })).status).toBe(400)
    expect((await ann.patch(`/files/${file.id}`, { folderId: randomUUID() })).status).toBe(404)

    expect((await ann.delete(`/files/${file.id}`)).status).toBe(204)
    for (const reply of [
      await ann.get(`/files/${file.id}`),
      await ann.download(file.id),
      await ann.delete(`/files/${file.id}`),
    ]) {
      expect(reply.status).toBe(404)
    }
  })

  it.skipIf(!available)("treats another user's file like a missing one", async () => {
    const file = await ann.upload('private.txt', Buffer.from('mine'))
    for (const id of [file.id, randomUUID(), 'garbage']) {
      for (const reply of [
        await bob.get(`/files/${id}`),
        await bob.download(id),
        await bob.patch(`/files/${id}`, { name: 'x' }),
        await bob.delete(`/files/${id}`),
      ]) {
        expect(reply.status).toBe(404)
        expect(reply.body).toMatchObject({ error: { code: 'NOT_FOUND' } })
      }
    }
    expect((await bob.get(`/files?folderId=${file.folderId ?? ''}`)).body.items).toEqual([])
    expect((await ann.download(file.id)).body.toString()).toBe('mine')
  })

  it.skipIf(!available)('serves byte ranges, suffix ranges, 416 and conditional requests', async () => {
    const bytes = randomBytes(CHUNK + 1000)
    const file = await ann.upload('ranges.bin', bytes)
    const etag = `"${file.contentHash}"`

    const across = await ann.download(file.id, { range: `bytes=${CHUNK - 10}-${CHUNK + 9}` })
    expect(across.status).toBe(206)
    expect(across.headers.get('content-range')).toBe(`bytes ${CHUNK - 10}-${CHUNK + 9}/${bytes.length}`)
    expect(across.body.equals(bytes.subarray(CHUNK - 10, CHUNK + 10))).toBe(true)

    const first = await ann.download(file.id, { range: 'bytes=0-0' })
    expect(first.body.equals(bytes.subarray(0, 1))).toBe(true)
    const suffix = await ann.download(file.id, { range: 'bytes=-500' })
    expect(suffix.status).toBe(206)
    expect(suffix.body.equals(bytes.subarray(bytes.length - 500))).toBe(true)
    const open = await ann.download(file.id, { range: `bytes=${bytes.length - 3}-` })
    expect(open.body.equals(bytes.subarray(bytes.length - 3))).toBe(true)
    const beyondEnd = await ann.download(file.id, { range: `bytes=10-${bytes.length * 2}` })
    expect(beyondEnd.body.equals(bytes.subarray(10))).toBe(true)

    const unsatisfiable = await ann.download(file.id, { range: `bytes=${bytes.length}-` })
    expect(unsatisfiable.status).toBe(416)
    expect(unsatisfiable.headers.get('content-range')).toBe(`bytes */${bytes.length}`)

    const notModified = await ann.download(file.id, { 'if-none-match': etag })
    expect(notModified.status).toBe(304)
    const staleIfRange = await ann.download(file.id, { range: 'bytes=0-9', 'if-range': '"stale"' })
    expect(staleIfRange.status).toBe(200)
    expect(staleIfRange.body.length).toBe(bytes.length)
  })

  it.skipIf(!available)('never lets a browser render downloaded content on our origin', async () => {
    const file = await ann.upload('evil.html', Buffer.from('<script>alert(1)</script>'))
    const download = await ann.download(file.id)
    expect(download.headers.get('content-type')).toBe('application/octet-stream')
    expect(download.headers.get('content-disposition')).toMatch(/^attachment;/)
    expect(download.headers.get('x-content-type-options')).toBe('nosniff')
    expect(download.headers.get('content-security-policy')).toContain("default-src 'none'")
  })
})

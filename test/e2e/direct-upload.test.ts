import { randomBytes } from 'node:crypto'
import { connect } from 'node:net'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { ApiClient, MiB, sha256 } from '../helpers/api-client.js'
import { DATABASES } from '../helpers/databases.js'
import { plainRequest } from '../helpers/plain-requests.js'
import { startTestServer, type TestServer } from '../helpers/test-server.js'

/**
 * `PUT /files/content` (README, API extensions): a file of at most one chunk in one request, with
 * the rules of a session upload: verified bytes, deduplication, versions and conflicted copies,
 * quota beside open sessions' reservations, the journal; sent with plain `fetch` and a raw socket.
 */

const QUOTA = 12 * MiB

interface PutOptions {
  folderId?: string
  baseVersion?: number | string
  hash?: string | null
  headers?: Record<string, string>
}

describe.each(DATABASES)('one-request file upload on %s', ({ name: backend, available }) => {
  let server: TestServer
  beforeAll(async () => {
    if (!available) return
    server = await startTestServer(backend, { DEFAULT_QUOTA_BYTES: String(QUOTA), GC_INTERVAL_SECONDS: '0' })
  })
  afterAll(async () => server?.stop())

  const someone = () => new ApiClient(server.api).register()

  /** One PUT with Node's own fetch; the hash is the body's unless given (null: no header). */
  async function putFile(client: ApiClient, name: string, body: Buffer, options: PutOptions = {}) {
    const query = new URLSearchParams({ name })
    if (options.folderId) query.set('folderId', options.folderId)
    if (options.baseVersion !== undefined) query.set('baseVersion', String(options.baseVersion))
    const headers: Record<string, string> = { authorization: `Bearer ${client.token}`, ...options.headers }
    const hash = options.hash === undefined ? sha256(body) : options.hash
    if (hash !== null) headers['x-content-sha256'] = hash
    const response = await fetch(`${server.api}/files/content?${query}`, { method: 'PUT', headers, body })
    const text = await response.text()
    return { status: response.status, body: text ? JSON.parse(text) : undefined }
  }

  /**
   * Sends only the head of a PUT that announces `bytes` and asks `Expect: 100-continue`, and
   * answers the first line the server sends back: a refusal that needs no body comes at once.
   */
  function firstLineForHead(client: ApiClient, query: string, bytes: Buffer): Promise<string> {
    const url = new URL(`${server.api}/files/content?${query}`)
    return new Promise((resolve, reject) => {
      const socket = connect(Number(url.port), url.hostname, () => {
        socket.write(
          `PUT ${url.pathname}${url.search} HTTP/1.1\r\nHost: ${url.host}\r\n` +
            `Authorization: Bearer ${client.token}\r\nX-Content-SHA256: ${sha256(bytes)}\r\n` +
            `Content-Length: ${bytes.length}\r\nExpect: 100-continue\r\n\r\n`,
        )
      })
      socket.once('data', (data) => {
        resolve(data.toString('latin1').split('\r\n')[0] ?? '')
        socket.destroy()
      })
      socket.on('error', reject)
    })
  }

  const names = async (client: ApiClient) =>
    ((await client.get('/files')).body.items as Array<{ name: string }>).map((item) => item.name)

  it.skipIf(!available)('stores a file answered 201 like complete, served byte for byte', async () => {
    const ann = await someone()
    const bytes = randomBytes(300_000)
    const put = await putFile(ann, 'notes.txt', bytes)
    expect(put.status).toBe(201)
    expect(put.body.conflict).toBe(false)
    expect(put.body.file).toMatchObject({ name: 'notes.txt', size: bytes.length, version: 1, folderId: null })
    const download = await ann.download(put.body.file.id)
    expect(Buffer.compare(download.body, bytes)).toBe(0)
    // The same content hash (and ETag) as the same bytes uploaded through a session.
    const viaSession = await ann.upload('notes-session.txt', bytes)
    expect(put.body.file.contentHash).toBe(viaSession.contentHash)
    expect(download.headers.get('etag')).toContain(put.body.file.contentHash)
    expect(await ann.usedBytes()).toBe(2 * bytes.length)
  })

  it.skipIf(!available)(
    'a second upload of a name is version 2; an out-of-date base keeps both',
    async () => {
      const ann = await someone()
      expect((await putFile(ann, 'a.txt', Buffer.from('one'))).body.file.version).toBe(1)
      const second = await putFile(ann, 'a.txt', Buffer.from('two!'), { baseVersion: 1 })
      expect(second.status).toBe(201)
      expect(second.body.file).toMatchObject({ version: 2, size: 4 })
      const stale = await putFile(ann, 'a.txt', Buffer.from('three'), { baseVersion: 1 })
      expect(stale.status).toBe(201)
      expect(stale.body.conflict).toBe(true)
      expect(stale.body.file.name).toMatch(/^a \(conflicted copy \d{4}-\d{2}-\d{2}\)\.txt$/)
      expect((await ann.get(`/files/${second.body.file.id}/versions`)).body.versions).toHaveLength(2)
      expect(await ann.usedBytes()).toBe(4 + 5)
    },
  )

  it.skipIf(!available)('concurrent uploads of one name make consecutive versions, none lost', async () => {
    const ann = await someone()
    const bodies = Array.from({ length: 12 }, (_, i) => Buffer.from(`version body ${i}`))
    const puts = await Promise.all(bodies.map((body) => putFile(ann, 'busy.txt', body)))
    expect(puts.map((put) => put.status)).toEqual(bodies.map(() => 201))
    const versions = puts.map((put) => put.body.file.version).sort((a, b) => a - b)
    expect(versions).toEqual(bodies.map((_, i) => i + 1))
    expect(new Set(puts.map((put) => put.body.file.id)).size).toBe(1)
    expect(await names(ann)).toEqual(['busy.txt'])
  })

  it.skipIf(!available)('refuses a body that does not match its hash, keeping nothing', async () => {
    const ann = await someone()
    const bytes = randomBytes(10_000)
    const wrong = await putFile(ann, 'x.bin', bytes, { hash: sha256(randomBytes(8)) })
    expect(wrong.status).toBe(400)
    expect(wrong.body.error.code).toBe('HASH_MISMATCH')
    expect(await names(ann)).toEqual([])
    expect(await ann.usedBytes()).toBe(0)
    // Nothing of those bytes is held: another user's init of them must send them.
    const bob = await someone()
    const init = await bob.init('x.bin', bytes)
    expect(init.body.chunksNeeded).toEqual([0])
  })

  it.skipIf(!available)('answers malformed requests with the contract error shape', async () => {
    const ann = await someone()
    const noHash = await putFile(ann, 'x', Buffer.from('x'), { hash: null })
    expect(noHash.status).toBe(400)
    expect(noHash.body.error.code).toBe('INVALID_REQUEST')
    const upper = await putFile(ann, 'x', Buffer.from('x'), { hash: sha256(Buffer.from('x')).toUpperCase() })
    expect(upper.body.error.code).toBe('INVALID_REQUEST')
    const badName = await putFile(ann, 'a/b', Buffer.from('x'))
    expect(badName.body.error.code).toBe('INVALID_NAME')
    const badBase = await putFile(ann, 'x', Buffer.from('x'), { baseVersion: 'zero' })
    expect(badBase.status).toBe(400)
    const notAnId = await putFile(ann, 'x', Buffer.from('x'), { folderId: 'nope' })
    expect(notAnId.body.error.code).toBe('INVALID_REQUEST')
    const unknown = await putFile(ann, 'x', Buffer.from('x'), { folderId: crypto.randomUUID() })
    expect(unknown.status).toBe(404)
    // One byte over a chunk: refused by its Content-Length, pointing at the chunked upload.
    const tooLarge = await putFile(ann, 'big.bin', randomBytes(4 * MiB + 1))
    expect(tooLarge.status).toBe(413)
    expect(tooLarge.body.error.code).toBe('PAYLOAD_TOO_LARGE')
    expect(tooLarge.body.error.message).toMatch(/upload\/init/)
    expect(await names(ann)).toEqual([])
  })

  it.skipIf(!available)('refuses a name a folder has before reading the body', async () => {
    const ann = await someone()
    expect((await ann.post('/folders', { name: 'docs' })).status).toBe(201)
    expect(await firstLineForHead(ann, 'name=docs', randomBytes(MiB))).toMatch(/^HTTP\/1\.1 409/)
    const put = await putFile(ann, 'Docs', randomBytes(100))
    expect(put.body.error.code).toBe('NAME_TAKEN')
  })

  it.skipIf(!available)(
    'takes the name as percent-encoded UTF-8, refusing what does not decode',
    async () => {
      const ann = await someone()
      const raw = async (query: string) => {
        const body = Buffer.from('x')
        const response = await fetch(`${server.api}/files/content?${query}`, {
          method: 'PUT',
          headers: { authorization: `Bearer ${ann.token}`, 'x-content-sha256': sha256(body) },
          body,
        })
        return { status: response.status, body: (await response.json()) as any }
      }
      for (const bad of ['%C3', 'ok%ZZ.txt', '%E9%FF', '%ED%A0%80']) {
        const put = await raw(`name=${bad}`)
        expect([bad, put.status, put.body.error.code]).toEqual([bad, 400, 'INVALID_NAME'])
      }
      expect((await raw('name=r%C3%A9sum%C3%A9+final.txt')).body.file.name).toBe('résumé final.txt')
      expect(await names(ann)).toEqual(['résumé final.txt'])
    },
  )

  it.skipIf(!available)('stores an empty file, whose hash is that of no bytes', async () => {
    const ann = await someone()
    const empty = await putFile(ann, 'empty', Buffer.alloc(0))
    expect(empty.status).toBe(201)
    expect(empty.body.file.size).toBe(0)
    expect((await ann.download(empty.body.file.id)).body.length).toBe(0)
    const lying = await putFile(ann, 'empty2', Buffer.alloc(0), { hash: sha256(Buffer.from('x')) })
    expect(lying.body.error.code).toBe('HASH_MISMATCH')
    // Without Content-Length or Transfer-Encoding a request has no body (curl -X PUT, no data).
    const url = new URL(`${server.api}/files/content?name=bare`)
    const answer = await new Promise<string>((resolve, reject) => {
      const socket = connect(Number(url.port), url.hostname, () => {
        socket.write(
          `PUT ${url.pathname}${url.search} HTTP/1.1\r\nHost: ${url.host}\r\nConnection: close\r\n` +
            `Authorization: Bearer ${ann.token}\r\nX-Content-SHA256: ${sha256(Buffer.alloc(0))}\r\n\r\n`,
        )
      })
      let text = ''
      socket.on('data', (data) => {
        text += data.toString('utf8')
      })
      socket.on('close', () => resolve(text))
      socket.on('error', reject)
    })
    expect(answer).toMatch(/^HTTP\/1\.1 201/)
    expect(await names(ann)).toContain('bare')
  })

  it.skipIf(!available)(
    'deduplicates against bytes another user stored, and the copy is shared',
    async () => {
      const ann = await someone()
      const bob = await someone()
      const bytes = randomBytes(64 * 1024)
      const first = await putFile(ann, 'shared-bytes', bytes)
      const second = await putFile(bob, 'mine', bytes)
      expect(second.status).toBe(201)
      // Each is charged for the file; ann deleting hers leaves bob's readable.
      expect(await bob.usedBytes()).toBe(bytes.length)
      expect((await ann.delete(`/files/${first.body.file.id}`)).status).toBe(204)
      expect(Buffer.compare((await bob.download(second.body.file.id)).body, bytes)).toBe(0)
    },
  )

  it.skipIf(!available)('counts the quota beside open sessions, and refuses before reading', async () => {
    const ann = await someone()
    // An open session reserves 8 MiB of the 12 MiB quota.
    const init = await plainRequest(server.api, 'POST', '/upload/init', ann.token, {
      filename: 'reserved.bin',
      size: 8 * MiB,
      chunkHashes: [sha256(randomBytes(8)), sha256(randomBytes(8))],
    })
    expect(init.status).toBe(201)
    const fits = await putFile(ann, 'three.bin', randomBytes(3 * MiB))
    expect(fits.status).toBe(201)
    const over = await putFile(ann, 'two.bin', randomBytes(2 * MiB))
    expect(over.status).toBe(507)
    expect(over.body.error.code).toBe('QUOTA_EXCEEDED')
    // A new version of the same size grows nothing, and fits.
    const replace = await putFile(ann, 'three.bin', randomBytes(3 * MiB))
    expect(replace.status).toBe(201)
    expect(await ann.usedBytes()).toBe(3 * MiB)
    // Refused from the head alone: no 100 Continue, no body read (as init refuses it).
    expect(await firstLineForHead(ann, 'name=later.bin', randomBytes(2 * MiB))).toMatch(/^HTTP\/1\.1 507/)
    expect((await ann.delete(`/upload/${init.body.uploadId}`)).status).toBe(204)
    expect((await putFile(ann, 'two.bin', randomBytes(2 * MiB))).status).toBe(201)
  })

  it.skipIf(!available)(
    'concurrent uploads into a nearly full quota: exactly what fits is kept',
    async () => {
      const ann = await someone()
      const puts = await Promise.all(
        Array.from({ length: 8 }, (_, i) => putFile(ann, `race-${i}.bin`, randomBytes(2 * MiB))),
      )
      const statuses = puts.map((put) => put.status).sort()
      expect(statuses).toEqual([201, 201, 201, 201, 201, 201, 507, 507])
      expect(await ann.usedBytes()).toBe(QUOTA)
      expect((await names(ann)).length).toBe(6)
    },
  )

  it.skipIf(!available)(
    'writes into a folder shared for editing, at its owner; not for viewers',
    async () => {
      const ann = await someone()
      const bob = await someone()
      const folder = (await ann.post('/folders', { name: 'team' })).body
      const addMember = (role: string) =>
        ann.post(`/folders/${folder.id}/members`, { email: bob.user.email, role })
      expect((await addMember('viewer')).status).toBe(201)
      const asViewer = await putFile(bob, 'doc.txt', Buffer.from('hi'), { folderId: folder.id })
      expect(asViewer.status).toBe(403)
      await ann.delete(`/folders/${folder.id}/members/${bob.user.id}`)
      expect((await addMember('editor')).status).toBe(201)
      const asEditor = await putFile(bob, 'doc.txt', Buffer.from('hi'), { folderId: folder.id })
      expect(asEditor.status).toBe(201)
      expect(await ann.usedBytes()).toBe(2)
      expect(await bob.usedBytes()).toBe(0)
      // Someone with no access at all: 404, as for a folder that does not exist.
      const carol = await someone()
      expect((await putFile(carol, 'x', Buffer.from('x'), { folderId: folder.id })).status).toBe(404)
    },
  )

  it.skipIf(!available)('journals the file: a create, then an update', async () => {
    const ann = await someone()
    const first = await putFile(ann, 'j.txt', Buffer.from('1'))
    await putFile(ann, 'j.txt', Buffer.from('2'))
    const { changes } = (await ann.get('/sync/changes')).body
    const mine = changes.filter((change: { id: string }) => change.id === first.body.file.id)
    expect(
      mine.map((change: { action: string; version: number }) => [change.action, change.version]),
    ).toEqual([
      ['create', 1],
      ['update', 2],
    ])
  })

  it.skipIf(!available)('a client cut off mid-body leaves no file, and others are served', async () => {
    const ann = await someone()
    const url = new URL(`${server.api}/files/content?name=cut.bin`)
    const bytes = randomBytes(200_000)
    await new Promise<void>((resolve, reject) => {
      const socket = connect(Number(url.port), url.hostname, () => {
        socket.write(
          `PUT ${url.pathname}${url.search} HTTP/1.1\r\nHost: ${url.host}\r\n` +
            `Authorization: Bearer ${ann.token}\r\nX-Content-SHA256: ${sha256(bytes)}\r\n` +
            `Content-Length: ${bytes.length}\r\n\r\n`,
        )
        socket.write(bytes.subarray(0, 50_000), () => setTimeout(() => socket.destroy(), 200))
      })
      socket.on('close', () => resolve())
      socket.on('error', reject)
    })
    const after = await putFile(ann, 'after.bin', Buffer.from('still here'))
    expect(after.status).toBe(201)
    expect(await names(ann)).toEqual(['after.bin'])
    expect(await ann.usedBytes()).toBe(10)
  })
})

import { randomBytes } from 'node:crypto'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { ApiClient } from '../helpers/api-client.js'
import { DATABASES } from '../helpers/databases.js'
import { startTestServer, type TestServer } from '../helpers/test-server.js'
import { waitFor } from '../helpers/wait-for.js'

const HOUR = 3_600_000

describe.each(DATABASES)('share links on %s', ({ name: backend, available }) => {
  let server: TestServer
  let ann: ApiClient
  let visitor: ApiClient
  beforeAll(async () => {
    if (!available) return
    server = await startTestServer(backend, {
      SHARE_PASSWORD_ATTEMPTS: '5',
      // One visitor may use the whole budget here; share-password-throttle.test.ts tests the shares.
      SHARE_PASSWORD_ATTEMPTS_PER_ADDRESS: '5',
      SHARE_PASSWORD_WINDOW_MINUTES: '15',
    })
    ann = await new ApiClient(server.api).register()
    visitor = new ApiClient(server.api)
  })
  afterAll(async () => server?.stop())

  const tag = () => randomBytes(4).toString('hex')
  const share = async (path: string, body: Record<string, unknown> = {}) => {
    const reply = await ann.post(path, body)
    expect(reply.status).toBe(201)
    return reply.body as { token: string; url: string; expiresAt: string | null }
  }
  const open = (token: string, password?: string, query = '') =>
    visitor.get(`/share/${token}${query}`, password === undefined ? {} : { 'x-share-password': password })
  const fetchBytes = (token: string, password?: string, query = '') =>
    visitor.get<Buffer>(
      `/share/${token}/download${query}`,
      password === undefined ? {} : { 'x-share-password': password },
    )

  it.skipIf(!available)(
    'serves a file link to anyone, as an attachment that cannot run script here',
    async () => {
      const html = Buffer.from('<html><script>alert(document.cookie)</script></html>')
      const file = await ann.upload(`page ${tag()}.html`, html)
      const link = await share(`/files/${file.id}/share`)
      expect(link.url).toBe(`${server.api}/share/${link.token}`)
      expect(link.expiresAt).toBeNull()

      const seen = await open(link.token)
      expect(seen.status).toBe(200)
      expect(seen.body).toEqual({
        type: 'file',
        file: {
          id: file.id,
          name: file.name,
          size: html.length,
          version: 1,
          contentHash: file.contentHash,
          updatedAt: expect.any(String),
        },
        expiresAt: null,
      })
      const got = await fetchBytes(link.token)
      expect(got.status).toBe(200)
      expect(Buffer.compare(got.body, html)).toBe(0)
      expect(got.headers.get('content-type')).toBe('application/octet-stream')
      expect(got.headers.get('content-disposition')).toMatch(/^attachment; /)
      expect(got.headers.get('x-content-type-options')).toBe('nosniff')
      expect(got.headers.get('content-security-policy')).toBe("default-src 'none'; sandbox")
      // A part of the file is not a download; a range of all of it is.
      expect((await visitor.get(`/share/${link.token}/download`, { range: 'bytes=5-9' })).status).toBe(206)
      const all = `bytes=0-${html.length - 1}`
      expect((await visitor.get(`/share/${link.token}/download`, { range: all })).status).toBe(206)
      await waitFor(
        async () => (await linkOf(link.token)).downloads === 2,
        'the second download counted',
        3000,
      )
    },
  )

  it.skipIf(!available)(
    'answers for the current version, and rests while the item is in the trash',
    async () => {
      const folder = (await ann.post('/folders', { name: `box ${tag()}` })).body
      const file = await ann.upload('doc.txt', Buffer.from('first'), { folderId: folder.id })
      const { token } = await share(`/files/${file.id}/share`)
      await ann.upload('doc.txt', Buffer.from('second'), { folderId: folder.id })
      expect((await fetchBytes(token)).body.toString()).toBe('second')

      expect((await ann.delete(`/folders/${folder.id}`)).status).toBe(204)
      expect((await open(token)).status).toBe(404)
      expect((await fetchBytes(token)).status).toBe(404)
      expect((await linkOf(token)).available).toBe(false)
      expect((await ann.post(`/trash/${folder.id}/restore`)).status).toBe(200)
      expect((await open(token)).status).toBe(200)
      expect((await fetchBytes(token)).body.toString()).toBe('second')
    },
  )

  it.skipIf(!available)(
    'lets a folder link list and download what is inside, and nothing outside',
    async () => {
      const top = (await ann.post('/folders', { name: `album ${tag()}` })).body
      const inner = (await ann.post('/folders', { name: 'inner', parentId: top.id })).body
      const a = await ann.upload('a.jpg', Buffer.from('A'), { folderId: top.id })
      const b = await ann.upload('b.jpg', Buffer.from('B'), { folderId: inner.id })
      const outside = await ann.upload(`outside ${tag()}`, Buffer.from('secret'))
      const elsewhere = (await ann.post('/folders', { name: `private ${tag()}` })).body
      const { token } = await share(`/folders/${top.id}/share`)

      const root = await open(token)
      expect(root.body).toMatchObject({ type: 'folder', folder: { id: top.id, path: '/' }, nextCursor: null })
      expect(root.body.items.map((i: { name: string }) => i.name)).toEqual(['inner', 'a.jpg'])
      const sub = await open(token, undefined, `?folderId=${inner.id}`)
      expect(sub.body).toMatchObject({ folder: { id: inner.id, name: 'inner', path: '/inner' } })
      expect(sub.body.items.map((i: { id: string }) => i.id)).toEqual([b.id])
      expect((await fetchBytes(token, undefined, `?fileId=${b.id}`)).body.toString()).toBe('B')
      expect((await fetchBytes(token, undefined, `?fileId=${a.id}`)).body.toString()).toBe('A')
      // Nothing outside: not the owner's other files or folders, not the parent, not junk.
      for (const query of [`?fileId=${outside.id}`, `?fileId=${inner.id}`, '?fileId=nonsense']) {
        expect((await fetchBytes(token, undefined, query)).status).toBe(404)
      }
      expect((await fetchBytes(token)).status).toBe(400)
      for (const id of [elsewhere.id, ann.user.id, a.id]) {
        expect((await open(token, undefined, `?folderId=${id}`)).status).toBe(404)
      }
      // A folder deleted inside the link is gone from it too.
      expect((await ann.delete(`/folders/${inner.id}`)).status).toBe(204)
      expect((await fetchBytes(token, undefined, `?fileId=${b.id}`)).status).toBe(404)
    },
  )

  it.skipIf(!available)('asks for a password, and stops checking after too many wrong ones', async () => {
    const file = await ann.upload(`locked ${tag()}`, Buffer.from('locked'))
    const { token } = await share(`/files/${file.id}/share`, { password: 'open sesame' })
    const missing = await open(token)
    expect(missing.status).toBe(401)
    expect(missing.body.error.code).toBe('SHARE_PASSWORD_REQUIRED')
    expect((await fetchBytes(token)).status).toBe(401)
    expect((await open(token, 'open sesame')).status).toBe(200)
    expect((await fetchBytes(token, 'open sesame')).body.toString()).toBe('locked')
    expect((await linkOf(token)).hasPassword).toBe(true)

    for (let i = 0; i < 5; i++) expect((await open(token, `guess ${i}`)).status).toBe(401)
    // The limit is per link and holds even for the right password until the window ends.
    const throttled = await open(token, 'open sesame')
    expect(throttled.status).toBe(429)
    expect(Number(throttled.headers.get('retry-after'))).toBeGreaterThan(0)
    expect((await fetchBytes(token, 'open sesame')).status).toBe(429)
    server.advance(16 * 60_000)
    expect((await open(token, 'open sesame')).status).toBe(200)
    // Another link of the same file is not throttled by this one's guesses.
    const other = await share(`/files/${file.id}/share`, { password: 'another' })
    expect((await open(other.token, 'another')).status).toBe(200)
  })

  it.skipIf(!available)(
    'expires links, refuses a past or malformed expiry, and lists expired ones',
    async () => {
      const file = await ann.upload(`soon ${tag()}`, Buffer.from('soon'))
      for (const expiresAt of [new Date(Date.now() - HOUR).toISOString(), 'tomorrow', {}]) {
        const reply = await ann.post(`/files/${file.id}/share`, { expiresAt })
        expect(reply.status).toBe(400)
      }
      expect((await ann.post(`/files/${file.id}/share`, { password: '' })).status).toBe(400)
      const expiresAt = new Date(Date.now() + HOUR).toISOString()
      const link = await share(`/files/${file.id}/share`, { expiresAt })
      expect(link.expiresAt).toBe(expiresAt)
      expect((await open(link.token)).status).toBe(200)
      server.advance(2 * HOUR)
      expect((await open(link.token)).status).toBe(404)
      expect((await fetchBytes(link.token)).status).toBe(404)
      expect(await linkOf(link.token)).toMatchObject({ expired: true, expiresAt })
    },
  )

  it.skipIf(!available)('revokes a link at once; only its owner can, and only once', async () => {
    const file = await ann.upload(`revocable ${tag()}`, Buffer.from('r'))
    const { token } = await share(`/files/${file.id}/share`)
    const bob = await new ApiClient(server.api).register()
    expect((await bob.delete(`/shares/${token}`)).status).toBe(404)
    expect((await open(token)).status).toBe(200)
    expect((await ann.delete(`/shares/${token}`)).status).toBe(204)
    expect((await open(token)).status).toBe(404)
    expect((await ann.delete(`/shares/${token}`)).status).toBe(404)
    const { shares } = (await ann.get('/shares')).body
    expect(shares.map((s: { token: string }) => s.token)).not.toContain(token)
    expect((await bob.get('/shares')).body.shares).toEqual([])
  })

  it.skipIf(!available)('makes tokens that cannot be guessed: 256 random bits each', async () => {
    const file = await ann.upload(`many ${tag()}`, Buffer.from('m'))
    const tokens: string[] = []
    for (let i = 0; i < 64; i++) tokens.push((await share(`/files/${file.id}/share`)).token)
    expect(new Set(tokens).size).toBe(tokens.length)
    let ones = 0
    for (const token of tokens) {
      expect(token).toMatch(/^[A-Za-z0-9_-]{43}$/)
      const bytes = Buffer.from(token, 'base64url')
      expect(bytes.length).toBe(32)
      for (const byte of bytes) for (let bit = 0; bit < 8; bit++) ones += (byte >> bit) & 1
    }
    // 16,384 bits: a fair source gives 8,192 ± 64 (1 sigma); 6 sigma is a broken one.
    expect(Math.abs(ones - 8192)).toBeLessThan(6 * 64)
    // Guessing: well-formed random tokens and near misses find nothing.
    const first = tokens[0] as string
    const nearMiss = `${first.slice(0, -1)}${first.endsWith('A') ? 'B' : 'A'}`
    for (const guess of [randomBytes(32).toString('base64url'), nearMiss, first.slice(0, 42), 'x']) {
      expect((await open(guess)).status).toBe(404)
    }
  })

  async function linkOf(token: string) {
    const { shares } = (await ann.get('/shares')).body
    const found = shares.find((s: { token: string }) => s.token === token)
    if (!found) throw new Error(`link ${token} is not listed`)
    return found
  }
})

describe('share link throttling per address', () => {
  let server: TestServer
  beforeAll(async () => {
    server = await startTestServer('sqlite', { SHARE_RATE_LIMIT_PER_MINUTE: '5' })
  })
  afterAll(async () => server?.stop())

  it('answers 429 to a visitor that asks too often', async () => {
    const visitor = new ApiClient(server.api)
    const statuses: number[] = []
    for (let i = 0; i < 7; i++)
      statuses.push((await visitor.get(`/share/${randomBytes(32).toString('base64url')}`)).status)
    expect(statuses).toEqual([404, 404, 404, 404, 404, 429, 429])
  })
})

import { randomBytes } from 'node:crypto'
import net from 'node:net'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { ApiClient } from '../helpers/api-client.js'
import { DATABASES } from '../helpers/databases.js'
import { startTestServer, type TestServer } from '../helpers/test-server.js'
import { waitFor } from '../helpers/wait-for.js'

const HOUR = 3_600_000
/** More than loopback socket buffers hold: a reader that stops early cuts the transfer off. */
const LARGE = 24 * 1024 * 1024

describe.each(DATABASES)('share link values on %s', ({ name: backend, available }) => {
  let server: TestServer
  let ann: ApiClient
  beforeAll(async () => {
    if (!available) return
    server = await startTestServer(backend)
    ann = await new ApiClient(server.api).register()
  })
  afterAll(async () => server?.stop())

  const listedTokens = async () => {
    const reply = await ann.get('/shares')
    expect(reply.status).toBe(200)
    return (reply.body.shares as { token: string }[]).map((share) => share.token)
  }
  const downloadsOf = async (token: string): Promise<number> => {
    const { shares } = (await ann.get('/shares')).body as { shares: { token: string; downloads: number }[] }
    return shares.find((share) => share.token === token)?.downloads ?? Number.NaN
  }

  it.skipIf(!available)(
    'refuses an expiry a date cannot hold, or not whole milliseconds, and saves nothing',
    async () => {
      const file = await ann.upload(`expiring ${randomBytes(4).toString('hex')}`, Buffer.from('x'))
      const before = await listedTokens()
      const inAnHour = Date.now() + HOUR
      // Year 10000 on: a Date holds it, but only as "+010000-…", which is no RFC 3339 date-time.
      const lastOf9999 = Date.UTC(9999, 11, 31, 23, 59, 59, 999)
      for (const expiresAt of [
        1e300,
        8.64e15,
        lastOf9999 + 1,
        Number.MAX_SAFE_INTEGER,
        inAnHour + 0.5,
        -1e300,
      ]) {
        const reply = await fetch(`${server.api}/files/${file.id}/share`, {
          method: 'POST',
          headers: { authorization: `Bearer ${ann.token}`, 'content-type': 'application/json' },
          body: `{"expiresAt":${expiresAt}}`,
        })
        const body = (await reply.json()) as { error?: { code: string } }
        expect({ expiresAt, status: reply.status, code: body.error?.code }).toEqual({
          expiresAt,
          status: 400,
          code: 'INVALID_REQUEST',
        })
        expect(await listedTokens()).toEqual(before)
      }
      // The last millisecond RFC 3339 can write, and whole milliseconds, are fine.
      for (const expiresAt of [lastOf9999, inAnHour]) {
        const reply = await ann.post(`/files/${file.id}/share`, { expiresAt })
        expect(reply.status).toBe(201)
        expect(reply.body.expiresAt).toBe(new Date(expiresAt).toISOString())
      }
      expect(await listedTokens()).toHaveLength(before.length + 2)
    },
  )

  it.skipIf(!available)(
    'takes only RFC 3339 date-times that exist as an expiry; other text is 400 and saves nothing',
    async () => {
      const file = await ann.upload(`dated ${randomBytes(4).toString('hex')}`, Buffer.from('x'))
      const before = await listedTokens()
      for (const expiresAt of [
        '2027-02-30T00:00:00Z', // Date.parse makes it 2 March
        '2027-04-31T00:00:00Z',
        '2027-13-01T00:00:00Z',
        '2027-01-01T24:00:00Z', // Date.parse makes it the next midnight
        '2027-01-01T12:60:00Z',
        '2027-01-01T00:00:00+24:00',
        'Fri, 01 Jan 2027 00:00:00 GMT',
        '2027',
        '2027-01-01',
        '2027-01-01T00:00:00', // no offset: whose midnight?
        '2027-01-01 00:00:00Z',
        'January 1, 2027',
      ]) {
        const reply = await fetch(`${server.api}/files/${file.id}/share`, {
          method: 'POST',
          headers: { authorization: `Bearer ${ann.token}`, 'content-type': 'application/json' },
          body: JSON.stringify({ expiresAt }),
        })
        const body = (await reply.json()) as { error?: { code: string; message: string } }
        expect({ expiresAt, status: reply.status, code: body.error?.code }).toEqual({
          expiresAt,
          status: 400,
          code: 'INVALID_REQUEST',
        })
        expect(body.error?.message).toMatch(/RFC 3339/)
      }
      expect(await listedTokens()).toEqual(before)

      for (const [expiresAt, saved] of [
        ['2028-02-29T23:59:59Z', '2028-02-29T23:59:59.000Z'],
        ['2027-06-30T12:00:00.25+02:00', '2027-06-30T10:00:00.250Z'],
        ['2027-01-01t00:00:00z', '2027-01-01T00:00:00.000Z'],
      ]) {
        const reply = await ann.post(`/files/${file.id}/share`, { expiresAt })
        expect({ expiresAt, status: reply.status }).toEqual({ expiresAt, status: 201 })
        expect(reply.body.expiresAt).toBe(saved)
      }
      expect(await listedTokens()).toHaveLength(before.length + 3)
    },
  )

  it.skipIf(!available)('counts a link download only when the whole file went out', async () => {
    const bytes = randomBytes(LARGE)
    const file = await ann.upload(`whole ${randomBytes(4).toString('hex')}`, bytes)
    const { token } = (await ann.post(`/files/${file.id}/share`, {})).body as { token: string }
    const url = `${server.api}/share/${token}/download`

    // Cut off: headers and a first piece read, then the socket closed.
    await readHeadThenHangUp(new URL(url))
    for (const range of ['bytes=0-0', 'bytes=0-99', `bytes=0-${LARGE - 2}`, `bytes=1-${LARGE - 1}`]) {
      const partial = await fetch(url, { headers: { range } })
      expect(partial.status).toBe(206)
      await partial.arrayBuffer()
    }
    const head = await fetch(url, { method: 'HEAD' })
    expect(head.status).toBe(200)

    const whole = await fetch(url)
    expect(whole.status).toBe(200)
    expect(Buffer.from(await whole.arrayBuffer()).equals(bytes)).toBe(true)
    await waitFor(async () => (await downloadsOf(token)) >= 1, 'the download counted', 5000)
    expect(await downloadsOf(token)).toBe(1)

    // A range of the whole file is a whole download too.
    const all = await fetch(url, { headers: { range: `bytes=0-${LARGE - 1}` } })
    expect(all.status).toBe(206)
    await all.arrayBuffer()
    await waitFor(async () => (await downloadsOf(token)) >= 2, 'the second download counted', 5000)
    expect(await downloadsOf(token)).toBe(2)
  })
})

/** A GET on a raw socket that reads the answer's head and a little body, then closes. */
function readHeadThenHangUp(url: URL): Promise<void> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(Number(url.port), url.hostname, () => {
      socket.write(`GET ${url.pathname} HTTP/1.1\r\nHost: ${url.host}\r\n\r\n`)
    })
    let seen = ''
    socket.on('data', (data: Buffer) => {
      seen += data.toString('latin1')
      if (!seen.includes('\r\n\r\n')) return
      if (!seen.startsWith('HTTP/1.1 200')) reject(new Error(`unexpected answer: ${seen.slice(0, 80)}`))
      socket.destroy()
      resolve()
    })
    socket.on('error', reject)
  })
}

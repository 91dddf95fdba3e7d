import net from 'node:net'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { MAX_JSON_DEPTH, MAX_JSON_VALUES } from '../../src/http/json-body.js'
import { ApiClient } from '../helpers/api-client.js'
import { DATABASES } from '../helpers/databases.js'
import { startTestServer, type TestServer } from '../helpers/test-server.js'

const CONTRACT_SHAPE = { error: { code: expect.stringMatching(/^[A-Z_]+$/), message: expect.any(String) } }

/**
 * Every error, from every layer (router, body parsers, Node's own HTTP parser), answers the
 * contract's `{"error": {"code", "message"}}` (issue 10), never Fastify's or Node's own shape.
 */
describe.each(DATABASES)('error answers from every layer on %s', ({ name: backend, available }) => {
  let server: TestServer
  beforeAll(async () => {
    if (available) server = await startTestServer(backend)
  })
  afterAll(async () => server?.stop())

  const viaFetch: Array<[string, string, RequestInit, number]> = [
    ['a 5,000-character id', `/api/v1/files/${'a'.repeat(5000)}`, {}, 404],
    ['a bad percent-encoding', '/api/v1/files/%E0%A4%A', {}, 400],
    ['a percent sign with no hex', '/api/v1/files/%zz/download', {}, 400],
    ['an unknown route', '/nope', {}, 404],
    ['an unknown API route', '/api/v1/nope', { method: 'POST' }, 404],
    [
      'invalid JSON',
      '/api/v1/auth/login',
      { method: 'POST', body: '{x', headers: { 'content-type': 'application/json' } },
      400,
    ],
    [
      'a body of another type',
      '/api/v1/auth/login',
      { method: 'POST', body: 'x', headers: { 'content-type': 'text/plain' } },
      400,
    ],
    [
      'a malformed content type',
      '/api/v1/auth/login',
      { method: 'POST', body: '{}', headers: { 'content-type': ';;;' } },
      415,
    ],
    [
      'a body beyond the limit',
      '/api/v1/auth/login',
      {
        method: 'POST',
        body: `"${'a'.repeat(2 * 1024 * 1024)}"`,
        headers: { 'content-type': 'application/json' },
      },
      413,
    ],
  ]
  it.skipIf(!available)(
    'refuses a query parameter given twice instead of guessing which was meant',
    async () => {
      const ann = await new ApiClient(server.api).register()
      const folder = (await ann.post('/folders', { name: 'docs' })).body.id as string
      const listing = await ann.get(`/files?folderId=${folder}&folderId=${folder}`)
      expect(listing.status).toBe(400)
      expect(listing.body).toMatchObject({
        error: { code: 'INVALID_REQUEST', message: expect.stringContaining('folderId') },
      })
      expect((await ann.get(`/files?folderId=${folder}`)).status).toBe(200)
    },
  )

  it.skipIf(!available)(
    'refuses JSON nested deeper or holding more values than any contract body, before parsing it (a stall of the whole server)',
    async () => {
      const nested = (depth: number) => `${'['.repeat(depth)}${']'.repeat(depth)}`
      const wide = `{"email":[${Array(MAX_JSON_VALUES).fill('{}').join(',')}],"password":"x"}`
      for (const body of [`{"email":${nested(MAX_JSON_DEPTH)},"password":"x"}`, nested(500_000), wide]) {
        const response = await fetch(`${server.api}/auth/login`, {
          method: 'POST',
          body,
          headers: { 'content-type': 'application/json' },
        })
        expect(response.status).toBe(400)
        expect(await response.json()).toMatchObject({ error: { code: 'INVALID_JSON' } })
      }
    },
  )

  for (const [name, path, init, status] of viaFetch) {
    it.skipIf(!available)(`answers ${name} in the contract's shape`, async () => {
      const response = await fetch(server.url + path, init)
      expect(response.status).toBe(status)
      expect(response.headers.get('content-type')).toMatch(/^application\/json/)
      expect(await response.json()).toEqual(CONTRACT_SHAPE)
    })
  }

  const viaSocket: Array<[string, string, number]> = [
    [
      'headers beyond 16 KiB',
      `GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(20_000)}\r\n\r\n`,
      431,
    ],
    ['a URL beyond 16 KiB', `GET /api/v1/files/${'b'.repeat(70_000)} HTTP/1.1\r\nHost: x\r\n\r\n`, 431],
    ['a request line that is not HTTP', 'BLAH\r\n\r\n', 400],
    ['an unknown method', 'FOO / HTTP/1.1\r\nHost: x\r\n\r\n', 400],
    [
      'a length that is not a number',
      'POST /api/v1/auth/login HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n',
      400,
    ],
    [
      'two different lengths',
      'POST /api/v1/auth/login HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\n{}',
      400,
    ],
    [
      'a length beside chunked encoding',
      'POST /api/v1/auth/login HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n',
      400,
    ],
    ['a bad percent-encoding', 'GET /api/v1/files/%E0%A4%A HTTP/1.1\r\nHost: x\r\n\r\n', 400],
  ]
  for (const [name, request, status] of viaSocket) {
    it.skipIf(!available)(`answers ${name} (raw socket) in the contract's shape`, async () => {
      const answer = await rawExchange(server, request)
      expect(answer.slice(0, answer.indexOf('\r\n'))).toMatch(new RegExp(`^HTTP/1\\.1 ${status} `))
      expect(answer).toMatch(/\r\ncontent-type: application\/json/i)
      expect(JSON.parse(answer.slice(answer.indexOf('\r\n\r\n') + 4))).toEqual(CONTRACT_SHAPE)
    })
  }
})

/** Sends `request` as it is and answers what came back: one answer, or all until the server closed. */
function rawExchange(server: TestServer, request: string): Promise<string> {
  const { port } = new URL(server.url)
  return new Promise((resolve) => {
    const socket = net.connect(Number(port), '127.0.0.1')
    let received = ''
    socket.setEncoding('utf8').on('data', (text: string) => {
      received += text
      // One answer is all these get: stop at the end of its body.
      const head = received.indexOf('\r\n\r\n')
      const length = /\r\ncontent-length: (\d+)/i.exec(received)?.[1]
      if (head >= 0 && length !== undefined && received.length >= head + 4 + Number(length)) socket.end()
    })
    socket.on('error', () => {})
    socket.on('close', () => resolve(received))
    socket.write(request)
  })
}

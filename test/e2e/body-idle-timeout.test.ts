import { randomBytes } from 'node:crypto'
import { readdir } from 'node:fs/promises'
import net from 'node:net'
import path from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { ApiClient, MiB, sha256 } from '../helpers/api-client.js'
import { DATABASES } from '../helpers/databases.js'
import { startTestServer, type TestServer } from '../helpers/test-server.js'
import { waitFor } from '../helpers/wait-for.js'

/** How long the stalled client waits for an answer before the test gives up on the server. */
const GIVE_UP_MS = 15_000

/**
 * A chunk PUT whose body stops arriving (issue 10): the server answers 408 once the body made no
 * progress for BODY_IDLE_TIMEOUT_SECONDS, removes the temp file it was writing, and serves others
 * meanwhile.
 */
describe.each(DATABASES)('a request body that stops arriving on %s', ({ name: backend, available }) => {
  let server: TestServer
  let ann: ApiClient
  beforeAll(async () => {
    if (!available) return
    server = await startTestServer(backend, { BODY_IDLE_TIMEOUT_SECONDS: '1' })
    ann = await new ApiClient(server.api).register()
  })
  afterAll(async () => server?.stop())

  /** A plain socket to the server, and all it is sent back until the server closes it. */
  const rawConnection = () => {
    const socket = net.connect(Number(new URL(server.url).port), '127.0.0.1')
    let received = ''
    socket.setEncoding('utf8').on('data', (text: string) => {
      received += text
    })
    const answered = new Promise<string>((resolve) => {
      const timer = setTimeout(() => resolve(`no answer within ${GIVE_UP_MS} ms: ${received}`), GIVE_UP_MS)
      socket.once('close', () => {
        clearTimeout(timer)
        resolve(received)
      })
      socket.once('error', () => {})
    })
    return { socket, answered }
  }
  const tempFiles = () => readdir(path.join(server.dataDir, 'chunks', 'tmp'))

  it.skipIf(!available)('is answered 408 and leaves no temp file behind', async () => {
    const bytes = randomBytes(MiB)
    const init = await ann.init('slow.bin', bytes)
    expect(init.status).toBe(201)
    const { socket, answered } = rawConnection()
    socket.write(
      `PUT /api/v1/upload/${init.body.uploadId}/chunk/0 HTTP/1.1\r\n` +
        'Host: localhost\r\n' +
        `Authorization: Bearer ${ann.token}\r\n` +
        `X-Chunk-Hash: ${sha256(bytes)}\r\n` +
        'Content-Type: application/octet-stream\r\n' +
        `Content-Length: ${bytes.length}\r\n\r\n`,
    )
    socket.write(bytes.subarray(0, 1000))

    // While that body stalls, its bytes sit in a temp file and other requests are served.
    await waitFor(async () => (await tempFiles()).length === 1)
    const other = await ann.get('/sync/latest')
    expect(other.status).toBe(200)

    const answer = await answered
    socket.destroy()
    expect(answer).toMatch(/^HTTP\/1\.1 408 /)
    const body = JSON.parse(answer.slice(answer.indexOf('\r\n\r\n') + 4))
    expect(body).toEqual({ error: { code: 'REQUEST_TIMEOUT', message: expect.any(String) } })
    await waitFor(async () => (await tempFiles()).length === 0)

    // The chunk still goes up whole afterwards.
    expect((await ann.putChunk(init.body.uploadId, 0, bytes)).status).toBe(200)
  })

  it.skipIf(!available)('is answered 408 when a JSON body stops arriving too', async () => {
    const { socket, answered } = rawConnection()
    socket.write(
      'POST /api/v1/folders HTTP/1.1\r\nHost: localhost\r\n' +
        `Authorization: Bearer ${ann.token}\r\n` +
        'Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{"name":',
    )
    const answer = await answered
    socket.destroy()
    expect(answer).toMatch(/^HTTP\/1\.1 408 /)
    expect(answer).toContain('"code":"REQUEST_TIMEOUT"')
  })
})

import net from 'node:net'
import { afterEach, describe, expect, it } from 'vitest'
import { DATABASES } from '../helpers/databases.js'
import { startTestServer, type TestServer } from '../helpers/test-server.js'
import { waitFor } from '../helpers/wait-for.js'

/** How long a test waits for the server to close a socket before it counts it as left open. */
const GIVE_UP_MS = 15_000

interface RawClient {
  socket: net.Socket
  /** Everything the server sent so far. */
  received(): string
  /** Resolves true once the server closed the connection, false after GIVE_UP_MS. */
  closed: Promise<boolean>
}

function connect(url: string): Promise<RawClient> {
  const { port } = new URL(url)
  const socket = net.connect(Number(port), '127.0.0.1')
  let text = ''
  socket.setEncoding('utf8').on('data', (part: string) => {
    text += part
  })
  socket.on('error', () => {})
  const closed = new Promise<boolean>((resolve) => {
    const timer = setTimeout(() => resolve(false), GIVE_UP_MS)
    socket.once('close', () => {
      clearTimeout(timer)
      resolve(true)
    })
  })
  return new Promise((resolve) =>
    socket.once('connect', () => resolve({ socket, received: () => text, closed })),
  )
}

/**
 * Slow and many connections (review finding 6): the unread body of an answered request is
 * drained for BODY_IDLE_TIMEOUT_SECONDS in all, however often its bytes trickle in; one client
 * address holds at most MAX_CONNECTIONS_PER_ADDRESS connections.
 */
describe.each(DATABASES)('slow and many connections on %s', ({ name: backend, available }) => {
  let server: TestServer | undefined
  afterEach(async () => {
    await server?.stop()
    server = undefined
  })

  it.skipIf(!available)(
    'closes answered (401, 429) requests whose bodies trickle in a byte at a time',
    async () => {
      server = await startTestServer(backend, {
        BODY_IDLE_TIMEOUT_SECONDS: '1',
        ANON_RATE_LIMIT_PER_MINUTE: '2',
      })
      const clients: RawClient[] = []
      for (let i = 0; i < 4; i++) {
        const client = await connect(server.url)
        client.socket.write(
          'PUT /api/v1/upload/x/chunk/0 HTTP/1.1\r\nHost: x\r\nContent-Length: 16000000\r\n\r\n',
        )
        await waitFor(() => client.received().includes('\r\n\r\n'), 'the answer')
        clients.push(client)
      }
      expect(clients.map((client) => client.received().split(' ')[1])).toEqual(['401', '401', '429', '429'])
      // A byte every 200 ms: well within the idle timeout (1 s) every time.
      const trickle = setInterval(() => {
        for (const { socket } of clients) if (!socket.destroyed) socket.write('a')
      }, 200)
      try {
        const closed = await Promise.all(clients.map((client) => client.closed))
        expect(closed).toEqual([true, true, true, true])
      } finally {
        clearInterval(trickle)
        for (const { socket } of clients) socket.destroy()
      }
    },
  )

  it.skipIf(!available)('answers 429 to a connection past MAX_CONNECTIONS_PER_ADDRESS', async () => {
    server = await startTestServer(backend, { MAX_CONNECTIONS_PER_ADDRESS: '3' })
    const held = [await connect(server.url), await connect(server.url), await connect(server.url)]
    const extra = await connect(server.url)
    extra.socket.write('GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n')
    expect(await extra.closed).toBe(true)
    const answer = extra.received()
    expect(answer).toMatch(/^HTTP\/1\.1 429 /)
    expect(answer).toMatch(/\r\nRetry-After: \d+\r\n/i)
    expect(JSON.parse(answer.slice(answer.indexOf('\r\n\r\n') + 4))).toEqual({
      error: { code: 'TOO_MANY_CONNECTIONS', message: expect.any(String) },
    })
    // Once one of them is closed, a new one is served.
    held[0]?.socket.destroy()
    await held[0]?.closed
    let status = 0
    for (let i = 0; i < 50 && status !== 200; i++) {
      const next = await connect(server.url)
      next.socket.write('GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n')
      await next.closed
      status = Number(next.received().split(' ')[1])
    }
    expect(status).toBe(200)
    for (const client of held) client.socket.destroy()
  })

  it.skipIf(!available)('leaves the per-address cap to the proxy with TRUST_PROXY', async () => {
    server = await startTestServer(backend, { MAX_CONNECTIONS_PER_ADDRESS: '2', TRUST_PROXY: 'true' })
    const held = [await connect(server.url), await connect(server.url), await connect(server.url)]
    const extra = await connect(server.url)
    extra.socket.write('GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n')
    expect(await extra.closed).toBe(true)
    expect(extra.received()).toMatch(/^HTTP\/1\.1 200 /)
    for (const client of held) client.socket.destroy()
  })

  it.skipIf(!available)('closes connections past MAX_CONNECTIONS at once', async () => {
    server = await startTestServer(backend, { MAX_CONNECTIONS: '2' })
    const held = [await connect(server.url), await connect(server.url)]
    const extra = await connect(server.url)
    extra.socket.write('GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n')
    expect(await extra.closed).toBe(true)
    expect(extra.received()).toBe('')
    for (const client of held) client.socket.destroy()
  })
})

import { randomBytes } from 'node:crypto'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { AMQP_URL, amqpAvailable } from '../helpers/amqp.js'
import { ApiClient } from '../helpers/api-client.js'
import { createTestDatabase, postgresAvailable, type TestDatabase } from '../helpers/databases.js'
import { type ServerProcess, startServerProcess } from '../helpers/server-process.js'
import { SyncSocket } from '../helpers/sync-client.js'
import { startTcpProxy, type TcpProxy } from '../helpers/tcp-proxy.js'

const brokerUp = await amqpAvailable()

/** Polls /readyz until `ready` is what it says; answers the last body. */
async function readiness(node: ServerProcess, ready: boolean, timeoutMs = 15_000) {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const reply = await fetch(`${node.url}/readyz`)
    const body = (await reply.json()) as { status: string; checks: Record<string, string> }
    if ((reply.status === 200) === ready) return body
    if (Date.now() > deadline) throw new Error(`readyz stayed ${reply.status}: ${JSON.stringify(body)}`)
    await new Promise((resolve) => setTimeout(resolve, 100))
  }
}

/**
 * The scaled setup: two `tessera serve` processes (two API nodes) sharing one PostgreSQL
 * database and one RabbitMQ broker. The writer talks to one node, the reader's devices to the
 * other, so every change reaches the reader only through the broker, or through the journal.
 * The reader node's broker connection goes through a proxy the test can cut.
 */
describe.skipIf(!brokerUp || !postgresAvailable())('sync across two API nodes over RabbitMQ', () => {
  let database: TestDatabase
  let proxy: TcpProxy
  let writerNode: ServerProcess
  let readerNode: ServerProcess
  let writer: ApiClient
  let reader: ApiClient
  const sockets: SyncSocket[] = []

  beforeAll(async () => {
    database = await createTestDatabase()
    const broker = new URL(AMQP_URL)
    proxy = await startTcpProxy({ host: broker.hostname, port: Number(broker.port || 5672) })
    ;[writerNode, readerNode] = await Promise.all([
      startServerProcess({ DATABASE_URL: database.url, AMQP_URL }),
      // Heartbeats every second, so that a cut the kernel does not report is noticed soon.
      startServerProcess({ DATABASE_URL: database.url, AMQP_URL: `${proxy.url(AMQP_URL)}?heartbeat=1` }),
    ])
    writer = await new ApiClient(writerNode.api).register()
    reader = new ApiClient(readerNode.api)
    const login = await reader.post('/auth/login', {
      email: writer.user.email,
      password: 'correct horse battery',
    })
    reader.token = login.body.token
    reader.user = login.body.user
  }, 90_000)

  afterAll(async () => {
    await Promise.all(sockets.map((socket) => socket.close()))
    await Promise.all([writerNode?.stop(), readerNode?.stop()])
    await proxy?.close()
    await database?.drop()
  })

  const listen = async (options?: Parameters<typeof SyncSocket.open>[1]) => {
    const socket = await SyncSocket.open(reader, options)
    sockets.push(socket)
    await socket.waitFor((s) => s.messages[0]?.type === 'hello')
    return socket
  }
  const makeFolder = async (name: string): Promise<string> => {
    const reply = await writer.post('/folders', { name })
    if (reply.status !== 201) throw new Error(`create failed: ${reply.status} ${JSON.stringify(reply.body)}`)
    return reply.body.id as string
  }

  it('delivers a change written on one node to a socket on the other, well under 2 s', async () => {
    expect((await readiness(readerNode, true)).checks.bus).toBe('ok')
    const socket = await listen()
    const started = Date.now()
    const id = await makeFolder(`across ${randomBytes(4).toString('hex')}`)
    await socket.waitFor((s) => s.changes.some((c) => c.id === id), 2000, 'the change from the other node')
    expect(Date.now() - started).toBeLessThan(2000)
    expect(socket.changes.at(-1)).toMatchObject({
      type: 'change',
      action: 'create',
      id,
      userId: writer.user.id,
    })
    await socket.close()
  })

  it('wakes a long poll on one node for a write on the other', async () => {
    const cursor = (await reader.get('/sync/latest')).body.cursor
    const waiting = reader.get(`/sync/longpoll?cursor=${cursor}&timeout=20`)
    await new Promise((resolve) => setTimeout(resolve, 300))
    const started = Date.now()
    await makeFolder(`poll ${randomBytes(4).toString('hex')}`)
    expect((await waiting).body).toEqual({ changes: true })
    expect(Date.now() - started).toBeLessThan(2000)
  })

  it('loses no change when a node loses the broker mid-stream, reconnects by itself, and says so', async () => {
    const socket = await listen()
    const ids: string[] = []
    for (let i = 0; i < 10; i++) ids.push(await makeFolder(`before ${i} ${randomBytes(3).toString('hex')}`))
    await socket.waitForChanges(10)

    proxy.cut()
    const down = await readiness(readerNode, false)
    expect(down.status).toBe('not ready')
    expect(down.checks.bus).toMatch(/^error/)
    expect(down.checks.metadata).toBe('ok')
    // Writes go on meanwhile on the other node; the journal has them all.
    for (let i = 0; i < 10; i++) ids.push(await makeFolder(`during ${i} ${randomBytes(3).toString('hex')}`))
    // The node still serves: the journal answers on it while its broker is gone.
    const journal = await reader.get(`/sync/changes?cursor=${socket.lastCursor}`)
    expect(journal.body.changes.map((c: { id: string }) => c.id)).toEqual(ids.slice(socket.changes.length))

    proxy.restore()
    expect((await readiness(readerNode, true)).checks.bus).toBe('ok')
    for (let i = 0; i < 5; i++) ids.push(await makeFolder(`after ${i} ${randomBytes(3).toString('hex')}`))
    await socket.waitForChanges(25, 15_000)
    // Exactly once each, in order: what the socket missed came from the journal on resync.
    await new Promise((resolve) => setTimeout(resolve, 300))
    expect(socket.changes.map((c) => c.id)).toEqual(ids)
    expect(socket.closed).toBeNull()
  })

  it('gives a reconnecting device the changes made on the other node while it was away', async () => {
    const first = await listen()
    const id = await makeFolder(`seen ${randomBytes(3).toString('hex')}`)
    await first.waitFor((s) => s.changes.some((c) => c.id === id))
    const cursor = first.lastCursor
    await first.close()
    const missed: string[] = []
    for (let i = 0; i < 5; i++) missed.push(await makeFolder(`missed ${i} ${randomBytes(3).toString('hex')}`))
    const second = await listen({ cursor })
    await second.waitForChanges(5)
    expect(second.changes.map((c) => c.id)).toEqual(missed)
  })
})

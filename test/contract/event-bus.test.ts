import { randomUUID } from 'node:crypto'
import type { Channel, ChannelModel, ConsumeMessage } from 'amqplib'
import { connect } from 'amqplib'
import { afterEach, describe, expect, it } from 'vitest'
import {
  AmqpEventBus,
  type AmqpEventBusOptions,
  DEAD_LETTER_EXCHANGE,
  DEAD_LETTER_QUEUE,
  EXCHANGE,
  routingKeyOf,
} from '../../src/adapters/amqp/amqp-event-bus.js'
import { LocalBroker, LocalEventBus } from '../../src/adapters/local-bus/local-event-bus.js'
import type { ChangeEvent } from '../../src/ports/event-bus.js'
import { AMQP_URL, amqpAvailable } from '../helpers/amqp.js'
import { startTcpProxy, type TcpProxy } from '../helpers/tcp-proxy.js'
import { waitFor } from '../helpers/wait-for.js'
import { changeEvent, eventBusContract, newUserId, RecordingListener } from './event-bus.contract.js'

const ignore = () => {}

describe('LocalEventBus', () => {
  eventBusContract(async () => {
    const broker = new LocalBroker()
    const node = (nodeId: string) => new LocalEventBus({ nodeId, broker })
    const [a, b, c] = [node('a'), node('b'), node('c')]
    const cleanup = async () => {
      await Promise.all([a, b, c].map((bus) => bus.close()))
    }
    return { a, b, c, cleanup }
  })

  it('reports what a listener throws and still delivers the rest', async () => {
    const broker = new LocalBroker()
    const reported: string[] = []
    const a = new LocalEventBus({ nodeId: 'a', broker })
    const b = new LocalEventBus({ nodeId: 'b', broker, onError: (_error, context) => reported.push(context) })
    const delivered: ChangeEvent[] = []
    b.listen({
      change: (event) => {
        delivered.push(event)
        if (delivered.length === 1) throw new Error('listener bug')
      },
      resync: ignore,
    })
    const user = newUserId()
    await b.follow(user)
    const events = [changeEvent(user), changeEvent(user)]
    await a.publish(events)
    await waitFor(() => delivered.length === 2, 'both deliveries')
    expect(delivered).toEqual(events)
    expect(reported).toEqual(['listener.change'])
  })

  it('alone on its broker delivers to nobody: the only node delivers to its clients itself', async () => {
    const a = new LocalEventBus({ nodeId: 'a' })
    const b = new LocalEventBus({ nodeId: 'b' })
    const heard = new RecordingListener()
    a.listen(heard)
    b.listen(heard)
    const user = newUserId()
    await a.follow(user)
    await b.follow(user)
    await a.publish([changeEvent(user)])
    // Deliveries go out on setImmediate: two turns are more than enough for one to land.
    for (let turn = 0; turn < 2; turn += 1) await new Promise(setImmediate)
    expect(heard.changes).toEqual([])
  })
})

const available = await amqpAvailable()

describe.skipIf(!available)('AmqpEventBus', () => {
  const open: Array<{ close(): Promise<void> }> = []
  const errors: Array<{ error: unknown; context: string }> = []
  afterEach(async () => {
    for (const resource of open.splice(0).reverse()) await resource.close()
    errors.splice(0)
  })

  /** A started bus, fast to reconnect, closed after the test. */
  const openBus = async (options: Partial<AmqpEventBusOptions> = {}) => {
    const bus = new AmqpEventBus({
      url: AMQP_URL,
      nodeId: `test-${randomUUID()}`,
      reconnectDelayMs: { initial: 20, max: 200 },
      onError: (error, context) => errors.push({ error, context }),
      ...options,
    })
    open.push(bus)
    await bus.start()
    return bus
  }

  const target = () => {
    const url = new URL(AMQP_URL)
    return { host: url.hostname, port: Number(url.port || 5672) }
  }
  const openProxy = async (): Promise<TcpProxy> => {
    const proxy = await startTcpProxy(target())
    open.push(proxy)
    return proxy
  }

  /** A connection of the test's own, to look at what the bus did. */
  const openAdmin = async (): Promise<{ connection: ChannelModel; channel: Channel }> => {
    const connection = await connect(AMQP_URL)
    connection.on('error', ignore)
    open.push(connection)
    const channel = await connection.createChannel()
    channel.on('error', ignore)
    return { connection, channel }
  }

  /** A fresh exclusive queue bound to `exchange`, and what arrives in it. */
  const tap = async (channel: Channel, exchange: string, pattern: string) => {
    const { queue } = await channel.assertQueue('', { exclusive: true })
    await channel.bindQueue(queue, exchange, pattern)
    const messages: ConsumeMessage[] = []
    await channel.consume(queue, (message) => message && messages.push(message), { noAck: true })
    return messages
  }

  const pings = (bus: AmqpEventBus) =>
    bus.ping().then(
      () => true,
      () => false,
    )

  describe('contract', () => {
    eventBusContract(async () => {
      const [a, b, c] = await Promise.all([openBus(), openBus(), openBus()])
      // The suite's afterEach closes them too; close is idempotent.
      const cleanup = async () => {
        await Promise.all([a, b, c].map((bus) => bus.close()))
      }
      return { a, b, c, cleanup }
    })
  })

  it('declares the topology and publishes persistent JSON messages naming their node', async () => {
    const nodeId = `test-${randomUUID()}`
    const bus = await openBus({ nodeId })
    const { connection, channel } = await openAdmin()
    await channel.checkExchange(EXCHANGE)
    await channel.checkExchange(DEAD_LETTER_EXCHANGE)
    await channel.checkQueue(DEAD_LETTER_QUEUE)
    // Declaring what exists with other properties fails (406 PRECONDITION_FAILED): these match.
    const strict = await connection.createChannel()
    strict.on('error', ignore)
    await strict.assertExchange(EXCHANGE, 'topic', { durable: true })
    await strict.assertExchange(DEAD_LETTER_EXCHANGE, 'fanout', { durable: true })
    await strict.assertQueue(DEAD_LETTER_QUEUE, { durable: true, maxLength: 10_000 })
    await strict.close()

    const seen = await tap(channel, EXCHANGE, 'user.*.change')
    const user = newUserId()
    const event = changeEvent(user)
    await bus.publish([event])
    const ours = () => seen.find((message) => message.fields.routingKey === routingKeyOf(user))
    await waitFor(() => ours() !== undefined, 'the message in the tap queue')
    const { fields, properties, content } = ours()!
    expect(fields.routingKey).toBe(`user.${user}.change`)
    expect(properties.deliveryMode).toBe(2)
    expect(properties.contentType).toBe('application/json')
    expect(properties.appId).toBe(nodeId)
    expect(properties.messageId).toMatch(/^[0-9a-f-]{36}$/)
    expect(Math.abs(properties.timestamp - Date.now() / 1000)).toBeLessThan(60)
    expect(JSON.parse(content.toString())).toEqual(event)
  })

  it('dead-letters a malformed message instead of delivering it, and reports it', async () => {
    const a = await openBus()
    const b = await openBus()
    const heard = new RecordingListener()
    b.listen(heard)
    const user = newUserId()
    await b.follow(user)
    const { channel } = await openAdmin()
    // A queue of our own on the dead-letter exchange (fanout) sees what sync.dead gets, without
    // taking messages of other suites out of sync.dead.
    const dead = await tap(channel, DEAD_LETTER_EXCHANGE, '')
    const malformed = {
      'not-json': '{"userId":',
      'wrong-shape': JSON.stringify({ userId: user, payload: [1, 2] }),
      'wrong-key': JSON.stringify({ userId: newUserId(), payload: {} }),
    }
    for (const [messageId, body] of Object.entries(malformed)) {
      channel.publish(EXCHANGE, routingKeyOf(user), Buffer.from(body), { messageId: `${messageId}-${user}` })
    }
    const marker = changeEvent(user)
    await a.publish([marker])
    await waitFor(() => heard.changes.length > 0, 'the marker')
    expect(heard.changes).toEqual([marker])
    const ids = Object.keys(malformed).map((id) => `${id}-${user}`)
    const ourDead = () => dead.filter((message) => ids.includes(message.properties.messageId))
    await waitFor(() => ourDead().length === ids.length, 'the dead letters')
    for (const message of ourDead()) {
      expect(message.fields.routingKey).toBe(routingKeyOf(user))
      expect(message.properties.headers?.['x-death']?.[0]?.reason).toBe('rejected')
    }
    const reported = errors
      .filter(({ context }) => context === 'amqp consume')
      .map(({ error }) => String(error))
    for (const id of ids) expect(reported.some((text) => text.includes(id))).toBe(true)
  })

  it('reports what it cannot send or deliver, and carries on', async () => {
    const a = await openBus()
    const b = await openBus()
    const user = newUserId()
    const delivered: ChangeEvent[] = []
    b.listen({
      change: (event) => {
        delivered.push(event)
        if (delivered.length === 1) throw new Error('listener bug')
      },
      resync: ignore,
    })
    await b.follow(user)
    await expect(b.follow('user.*')).rejects.toThrow(/routable/)
    const huge = changeEvent(user, { blob: 'x'.repeat(2 * 1024 * 1024) })
    const [first, second] = [changeEvent(user), changeEvent(user)]
    await a.publish([first!, { userId: 'a.b', payload: {} }, huge])
    await a.publish([second!])
    await waitFor(() => delivered.length === 2, 'both deliveries')
    expect(delivered).toEqual([first, second])
    const contexts = errors.map(({ context }) => context)
    expect(contexts.filter((context) => context === 'amqp publish')).toHaveLength(2)
    expect(contexts).toContain('listener.change')
    await expect(a.ping()).resolves.toBeUndefined()
  })

  it('reconnects by itself after its connection is cut, rebinds and resyncs', async () => {
    const proxy = await openProxy()
    const a = await openBus()
    const b = await openBus({ url: proxy.url(AMQP_URL) })
    const heard = new RecordingListener()
    b.listen(heard)
    const user = newUserId()
    await b.follow(user)
    await a.publish([changeEvent(user)])
    await waitFor(() => heard.changes.length === 1, 'the first delivery')

    proxy.cut()
    await waitFor(async () => !(await pings(b)), 'ping to fail')
    await expect(b.ping()).rejects.toThrow(/^RabbitMQ connection down since \d{4}-\d\d-\d\dT[\d:.]+Z: ./)
    // Missed by b: its queue went with its connection. That is what resync is for.
    await a.publish([changeEvent(user)])
    // Retries fail while cut; the bus keeps trying.
    await new Promise((resolve) => setTimeout(resolve, 300))
    expect(await pings(b)).toBe(false)

    proxy.restore()
    await waitFor(() => pings(b), 'b to reconnect')
    expect(heard.resyncs).toBe(1)
    const after = changeEvent(user)
    await a.publish([after])
    await waitFor(() => heard.changes.length === 2, 'a delivery after the reconnect')
    expect(heard.changes[1]).toEqual(after)
    expect(errors.some(({ context }) => context.startsWith('amqp'))).toBe(true)
  })

  it('buffers what it publishes while cut off, events flowing throughout, and sends it all when back', async () => {
    const proxy = await openProxy()
    const a = await openBus({ url: proxy.url(AMQP_URL) })
    const b = await openBus()
    const heardA = new RecordingListener()
    const heardB = new RecordingListener()
    a.listen(heardA)
    b.listen(heardB)
    const user = newUserId()
    await b.follow(user)

    // Calls overlap, as concurrent requests' do, so the cut finds many of them unconfirmed.
    const published: unknown[] = []
    const publishing: Promise<void>[] = []
    let settled = 0
    const flow = setInterval(() => {
      for (let i = 0; i < 5; i += 1) {
        const event = changeEvent(user)
        published.push(event.payload.cursor)
        publishing.push(
          a.publish([event]).then(() => {
            settled += 1
          }),
        )
      }
    }, 2)
    try {
      await waitFor(() => heardB.changes.length >= 50, 'events flowing')
      proxy.cut()
      await waitFor(async () => !(await pings(a)), 'ping to fail')
      const cutAt = settled
      await waitFor(() => settled >= cutAt + 50, 'publishes resolving while cut off')
      proxy.restore()
      await waitFor(() => pings(a), 'a to reconnect')
      const backAt = published.length
      await waitFor(() => published.length >= backAt + 50, 'publishes after the reconnect')
    } finally {
      clearInterval(flow)
    }
    await Promise.all(publishing)

    const received = () => new Set(heardB.changes.map((event) => event.payload.cursor))
    await waitFor(() => published.every((cursor) => received().has(cursor)), 'every event at b', 10_000)
    // Messages the broker took but whose confirm the cut lost are sent twice: the first
    // arrivals are still in publish order.
    expect([...received()]).toEqual(published)
    expect(heardA.resyncs).toBe(1)
    // Nothing was dropped, so nobody else had to resync.
    expect(heardB.resyncs).toBe(0)
  })

  it('has the followers of users whose buffered events it dropped resync, and nobody else', async () => {
    const proxy = await openProxy()
    const a = await openBus({ url: proxy.url(AMQP_URL), bufferLimit: 3 })
    const b = await openBus()
    const c = await openBus()
    const heardB = new RecordingListener()
    const heardC = new RecordingListener()
    b.listen(heardB)
    c.listen(heardC)
    const user = newUserId()
    const bystander = newUserId()
    await b.follow(user)
    await c.follow(bystander)
    proxy.cut()
    await waitFor(async () => !(await pings(a)), 'ping to fail')
    const events = Array.from({ length: 5 }, () => changeEvent(user))
    for (const event of events) await a.publish([event])
    proxy.restore()
    await waitFor(
      () => heardB.resyncs === 1 && heardB.changes.length === 3,
      'the newest 3 events and a resync',
    )
    // The oldest were dropped.
    expect(heardB.changes).toEqual(events.slice(2))
    const marker = changeEvent(bystander)
    await a.publish([marker])
    await waitFor(() => heardC.changes.length === 1, "c's marker")
    expect(heardC.resyncs).toBe(0)
  })

  it('starts while the broker is unreachable and connects once it answers', async () => {
    const proxy = await openProxy()
    proxy.cut()
    const started = Date.now()
    const bus = await openBus({ url: proxy.url(AMQP_URL) })
    expect(Date.now() - started).toBeLessThan(2_000)
    await expect(bus.ping()).rejects.toThrow(/^RabbitMQ connection down since /)
    const heard = new RecordingListener()
    bus.listen(heard)
    const user = newUserId()
    // Resolves at once while down; the binding is made on connect.
    await bus.follow(user)
    await bus.publish([changeEvent(newUserId())])
    const a = await openBus()

    proxy.restore()
    await waitFor(() => pings(bus), 'the bus to connect')
    expect(heard.resyncs).toBe(1)
    const event = changeEvent(user)
    await a.publish([event])
    await waitFor(() => heard.changes.length === 1, 'a delivery')
    expect(heard.changes).toEqual([event])
  })

  it('releases its connection when closed during the first attempt', async () => {
    const proxy = await openProxy()
    const bus = new AmqpEventBus({
      url: proxy.url(AMQP_URL),
      nodeId: `test-${randomUUID()}`,
      onError: ignore,
    })
    const started = bus.start()
    await waitFor(() => proxy.connections === 1, 'the first attempt to reach the proxy')
    await bus.close()
    await started
    await waitFor(() => proxy.active === 0, 'the connection to close')
    await new Promise((resolve) => setTimeout(resolve, 300))
    expect(proxy.connections).toBe(1)
    await expect(bus.ping()).rejects.toThrow(/closed/)
  })

  it('stops retrying when closed while the broker is unreachable', async () => {
    const proxy = await openProxy()
    proxy.cut()
    const bus = await openBus({ url: proxy.url(AMQP_URL) })
    await bus.close()
    proxy.restore()
    await new Promise((resolve) => setTimeout(resolve, 300))
    expect(proxy.connections).toBe(0)
    await expect(bus.ping()).rejects.toThrow(/closed/)
    await expect(bus.publish([changeEvent(newUserId())])).resolves.toBeUndefined()
  })
})

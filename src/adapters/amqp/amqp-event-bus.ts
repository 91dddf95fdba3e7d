import { randomUUID } from 'node:crypto'
import type { Channel, ChannelModel, ConfirmChannel, ConsumeMessage } from 'amqplib'
import { connect, IllegalOperationError } from 'amqplib'
import type { ChangeEvent, EventBus, EventBusListener } from '../../ports/event-bus.js'

// Names fixed by the project brief: operators and other tools look for them.
export const EXCHANGE = 'sync.events'
export const DEAD_LETTER_EXCHANGE = 'dlx'
export const DEAD_LETTER_QUEUE = 'sync.dead'
export const routingKeyOf = (userId: string): string => `user.${userId}.change`

/** Bounds, so neither dead letters nor a stalled node's queue can fill the broker's memory. */
const DEAD_LETTER_MAX_LENGTH = 10_000
const NODE_QUEUE_MAX_LENGTH = 10_000
const PREFETCH = 256
/** A broker host that drops packets would otherwise hold start() for the OS's minutes-long SYN retries. */
const CONNECT_TIMEOUT_MS = 10_000
const DEFAULT_BUFFER_LIMIT = 10_000
const DEFAULT_RECONNECT_DELAY_MS = { initial: 100, max: 5_000 }
/** ±20% on every reconnect delay, so nodes cut off together do not come back in lockstep. */
const JITTER = 0.2
/** A user id must be one word of a topic key: a dot would split it, `*` or `#` would match others. */
const ROUTABLE = /^[^.*#]+$/
/**
 * Change hints are small; a message the broker refuses for its size closes the channel, and
 * sending it again after every reconnect would never end.
 */
const MAX_BODY_BYTES = 1024 * 1024
/** The error amqplib gives a confirm callback when the broker nacked (lib/channel.js). */
const NACKED = 'message nacked'

export interface AmqpEventBusOptions {
  /** amqp://user:password@host:port/vhost (`?heartbeat=` there sets how fast a dead peer is noticed). */
  url: string
  /** This node's id, sent as `appId`: a node skips its own messages (it delivered them locally). */
  nodeId: string
  /** Connection losses, refused publishes, malformed messages and listener failures; none is thrown. */
  onError?: (error: unknown, context: string) => void
  /** Reconnect backoff: doubles from `initial` up to `max`, with jitter. Default 100 ms to 5 s. */
  reconnectDelayMs?: { initial: number; max: number }
  /**
   * Events kept while the broker is unreachable, beyond which the oldest are dropped; also how
   * many users whose events were dropped are remembered, to have their followers resync. 10000.
   */
  bufferLimit?: number
}

/** An encoded message, as it is sent or as it waits for the broker. */
interface Outgoing {
  /** Publish order, which messages sent again after a lost connection take their place by. */
  seq: number
  userId: string
  body: Buffer
  messageId: string
  /** Seconds, as AMQP's timestamp property is. */
  timestamp: number
}

/** One connection; `lost` is set once, by whichever event notices its end first. */
interface Session {
  connection: ChannelModel
  lost: boolean
}

/** A session whose channels are open and whose queue is consumed. */
interface Link {
  session: Session
  publisher: ConfirmChannel
  consumer: Channel
  queue: string
  /** The users bound on this queue, which `#converge` brings to `#followed`. */
  bound: Set<string>
  /** Binding changes run one after another, so a follow and an unfollow cannot interleave. */
  bindings: Promise<void>
}

/**
 * The event bus between API nodes, on RabbitMQ. Each node consumes an exclusive, server-named
 * queue (a named one could still be held by the broker for a connection it has not noticed is
 * dead) bound to `sync.events` once per followed user. It reconnects on its own; every
 * reconnect declares everything again, rebinds, sends what was buffered, then calls `resync`.
 *
 * The constructor does not connect: `start()` does, and resolves after the first attempt
 * whichever way it went, so a server starts while RabbitMQ is down (and says so in /readyz).
 */
export class AmqpEventBus implements EventBus {
  readonly #url: string
  readonly #nodeId: string
  readonly #onError: (error: unknown, context: string) => void
  readonly #delays: { initial: number; max: number }
  readonly #bufferLimit: number
  readonly #followed = new Set<string>()
  #listener: EventBusListener | null = null
  #session: Session | null = null
  #link: Link | null = null
  /** The link's bindings are restored and the buffer sent: publishes go straight to the broker. */
  #live = false
  #blocked: string | null = null
  #down = { since: new Date(), reason: 'not connected yet' }
  #wasDown = false
  #buffer: Outgoing[] = []
  /** Users whose events the buffer dropped: their followers are told to resync on reconnect. */
  readonly #droppedUsers = new Set<string>()
  /** Events dropped beyond what #droppedUsers can remember. */
  #forgotten = 0
  #failures = 0
  #timer: NodeJS.Timeout | null = null
  #attempt: Promise<void> | null = null
  #started: Promise<void> | null = null
  #closing: Promise<void> | null = null

  constructor(options: AmqpEventBusOptions) {
    this.#url = options.url
    this.#nodeId = options.nodeId
    this.#onError = options.onError ?? warn
    this.#delays = options.reconnectDelayMs ?? DEFAULT_RECONNECT_DELAY_MS
    this.#bufferLimit = options.bufferLimit ?? DEFAULT_BUFFER_LIMIT
  }

  /**
   * Connects for the first time. Never rejects: after a failed first attempt it resolves too,
   * and the bus keeps retrying in the background. Calling it again returns the same promise.
   */
  start(): Promise<void> {
    this.#started ??= this.#connect()
    return this.#started
  }

  async publish(events: readonly ChangeEvent[]): Promise<void> {
    if (this.#closing !== null) return
    const messages = events.flatMap((event) => this.#encode(event) ?? [])
    const link = this.#link
    if (link !== null && this.#live && this.#blocked === null) await this.#send(link, messages)
    else this.#enqueue(messages)
  }

  listen(listener: EventBusListener): void {
    this.#listener = listener
  }

  async follow(userId: string): Promise<void> {
    if (!ROUTABLE.test(userId)) throw new TypeError(`not a routable user id: ${JSON.stringify(userId)}`)
    if (this.#closing !== null) return
    this.#followed.add(userId)
    await this.#applyBindings()
  }

  async unfollow(userId: string): Promise<void> {
    this.#followed.delete(userId)
    await this.#applyBindings()
  }

  async ping(): Promise<void> {
    if (this.#closing !== null) throw new Error('RabbitMQ event bus closed')
    if (this.#blocked !== null) throw new Error(`RabbitMQ connection blocked: ${this.#blocked}`)
    if (!this.#live) {
      throw new Error(
        `RabbitMQ connection down since ${this.#down.since.toISOString()}: ${this.#down.reason}`,
      )
    }
  }

  close(): Promise<void> {
    this.#closing ??= this.#shutdown()
    return this.#closing
  }

  async #shutdown(): Promise<void> {
    if (this.#timer !== null) clearTimeout(this.#timer)
    this.#live = false
    this.#buffer = []
    this.#followed.clear()
    const session = this.#session
    this.#session = null
    this.#link = null
    if (session !== null) {
      session.lost = true
      await session.connection.close().catch(ignore)
    }
    // An attempt in flight sees #closing and releases its connection itself.
    await this.#attempt
  }

  /** One connection attempt; never rejects. A failure schedules the next one. */
  #connect(): Promise<void> {
    this.#timer = null
    this.#attempt = this.#closing === null ? this.#open() : Promise.resolve()
    return this.#attempt
  }

  async #open(): Promise<void> {
    let session: Session | null = null
    try {
      const connection = await connect(this.#url, {
        timeout: CONNECT_TIMEOUT_MS,
        clientProperties: { connection_name: `tessera ${this.#nodeId}` },
      })
      const current: Session = { connection, lost: false }
      session = current
      // Listeners first: an 'error' event without one would be thrown.
      connection.on('error', (error: Error) => this.#lose(current, error, 'connection error'))
      connection.on('close', (error?: Error) => this.#lose(current, error ?? 'closed by the broker', 'close'))
      connection.on('blocked', (reason: string) => this.#setBlocked(current, reason))
      connection.on('unblocked', () => this.#setBlocked(current, null))
      if (this.#closing !== null) {
        current.lost = true
        await connection.close().catch(ignore)
        return
      }
      this.#session = current
      const link = await this.#declare(current)
      this.#link = link
      await this.#reconcile(link)
      if (current.lost || this.#closing !== null) return
      // Synchronously from here: nothing published meanwhile can overtake the buffered events.
      this.#live = true
      this.#failures = 0
      const dropped = this.#droppedUsers.size > 0
      this.#flush(link)
      if (this.#wasDown || dropped) this.#notify((listener) => listener.resync(), 'listener.resync')
      this.#wasDown = false
    } catch (error) {
      this.#lose(session, error, 'connect')
    }
  }

  /** The topology, this node's queue and its consumer, on a fresh connection. */
  async #declare(session: Session): Promise<Link> {
    const { connection } = session
    const publisher = await connection.createConfirmChannel()
    this.#watch(session, publisher)
    const consumer = await connection.createChannel()
    this.#watch(session, consumer)
    await publisher.assertExchange(EXCHANGE, 'topic', { durable: true })
    await publisher.assertExchange(DEAD_LETTER_EXCHANGE, 'fanout', { durable: true })
    await publisher.assertQueue(DEAD_LETTER_QUEUE, { durable: true, maxLength: DEAD_LETTER_MAX_LENGTH })
    await publisher.bindQueue(DEAD_LETTER_QUEUE, DEAD_LETTER_EXCHANGE, '')
    await consumer.prefetch(PREFETCH)
    // drop-head, not reject-publish: a stalled node loses its oldest messages (dead-lettered)
    // instead of making every other node's publishes nacked.
    const { queue } = await consumer.assertQueue('', {
      exclusive: true,
      autoDelete: true,
      deadLetterExchange: DEAD_LETTER_EXCHANGE,
      maxLength: NODE_QUEUE_MAX_LENGTH,
      overflow: 'drop-head',
    })
    const link: Link = { session, publisher, consumer, queue, bound: new Set(), bindings: Promise.resolve() }
    await consumer.consume(queue, (message) => this.#receive(link, message))
    return link
  }

  /** A channel closes on any error (AMQP 0-9-1): that is a lost connection, and reconnects. */
  #watch(session: Session, channel: Channel): void {
    channel.on('error', (error: Error) => this.#lose(session, error, 'channel error'))
    channel.on('close', () => this.#lose(session, 'channel closed', 'channel close'))
  }

  /** Marks the session lost (once), reports why and schedules a reconnect. */
  #lose(session: Session | null, error: unknown, context: string): void {
    if (session !== null) {
      if (session.lost) return
      session.lost = true
      // Releases what is left; for a channel error the connection itself is still open.
      session.connection.close().catch(ignore)
      if (this.#session === session) {
        this.#session = null
        this.#link = null
        this.#live = false
        this.#blocked = null
      }
    }
    if (this.#closing !== null) return
    if (!this.#wasDown) this.#down = { since: new Date(), reason: reasonOf(error) }
    else this.#down.reason = reasonOf(error)
    this.#wasDown = true
    this.#report(error, `amqp ${context}`)
    if (this.#timer !== null) return
    const { initial, max } = this.#delays
    const base = Math.min(max, initial * 2 ** this.#failures)
    this.#failures += 1
    const delay = Math.min(max, base * (1 - JITTER + Math.random() * 2 * JITTER))
    this.#timer = setTimeout(() => void this.#connect(), delay)
    // Retrying alone must not keep a process alive that has nothing else to do.
    this.#timer.unref()
  }

  #setBlocked(session: Session, reason: string | null): void {
    if (session !== this.#session) return
    this.#blocked = reason
    // The broker reads nothing while it is blocked (a resource alarm): publishes waited in the buffer.
    if (reason === null && this.#link !== null && this.#live) this.#flush(this.#link)
  }

  #applyBindings(): Promise<void> {
    const link = this.#link
    // Without a link the next connection binds everything; a failure here is a lost connection.
    return link === null ? Promise.resolve() : this.#reconcile(link).catch(ignore)
  }

  #reconcile(link: Link): Promise<void> {
    const run = link.bindings.then(() => this.#converge(link))
    link.bindings = run.catch(ignore)
    return run
  }

  async #converge(link: Link): Promise<void> {
    for (const userId of this.#followed) {
      if (link.bound.has(userId)) continue
      await link.consumer.bindQueue(link.queue, EXCHANGE, routingKeyOf(userId))
      link.bound.add(userId)
    }
    for (const userId of link.bound) {
      if (this.#followed.has(userId)) continue
      await link.consumer.unbindQueue(link.queue, EXCHANGE, routingKeyOf(userId))
      link.bound.delete(userId)
    }
  }

  #receive(link: Link, message: ConsumeMessage | null): void {
    // amqplib closes the channel when this throws: nothing may escape.
    try {
      if (message === null) {
        this.#lose(link.session, 'the broker cancelled the consumer', 'consume')
        return
      }
      if (message.properties.appId === this.#nodeId) {
        link.consumer.ack(message)
        return
      }
      const decoded = decode(message)
      if (decoded === null) {
        link.consumer.nack(message, false, false)
        const id = message.properties.messageId ?? 'without id'
        const problem = `malformed change event (${id}) on ${message.fields.routingKey}: sent to ${DEAD_LETTER_QUEUE}`
        this.#report(new Error(problem), 'amqp consume')
        return
      }
      link.consumer.ack(message)
      // Checked here as well as in the binding: messages queued before an unfollow still arrive.
      if (!this.#followed.has(decoded.userId)) return
      if ('resync' in decoded) this.#notify((listener) => listener.resync(), 'listener.resync')
      else this.#notify((listener) => listener.change(decoded), 'listener.change')
    } catch (error) {
      // ack/nack throw only on a closed channel, whose loss is handled by its events.
      this.#report(error, 'amqp consume')
    }
  }

  #encode(event: ChangeEvent): Outgoing | null {
    try {
      if (!ROUTABLE.test(event.userId)) throw new TypeError(`not a routable user id: ${event.userId}`)
      const message = envelope(event.userId, { userId: event.userId, payload: event.payload })
      if (message.body.length > MAX_BODY_BYTES)
        throw new RangeError(`change event of ${message.body.length} bytes`)
      return message
    } catch (error) {
      this.#report(error, 'amqp publish')
      return null
    }
  }

  #enqueue(messages: readonly Outgoing[], again = false): void {
    this.#buffer.push(...messages)
    if (again) this.#buffer.sort((x, y) => x.seq - y.seq)
    const excess = this.#buffer.length - this.#bufferLimit
    if (excess <= 0) return
    for (const { userId } of this.#buffer.splice(0, excess)) {
      if (this.#droppedUsers.size < this.#bufferLimit) this.#droppedUsers.add(userId)
      else if (!this.#droppedUsers.has(userId)) this.#forgotten += 1
    }
  }

  /**
   * Sends what was buffered, then a resync hint under the key of each user whose events were
   * dropped (the port: "then a resync is due"): it reaches exactly the nodes that follow them.
   */
  #flush(link: Link): void {
    const messages = this.#buffer.splice(0)
    for (const userId of this.#droppedUsers) messages.push(envelope(userId, { userId, resync: true }))
    this.#droppedUsers.clear()
    if (this.#forgotten > 0) {
      const lost = `${this.#forgotten} dropped events of users beyond ${this.#bufferLimit}: no resync hint`
      this.#report(new Error(lost), 'amqp publish')
      this.#forgotten = 0
    }
    if (messages.length > 0) void this.#send(link, messages)
  }

  /** Resolves once the broker confirmed each message; what a lost channel left unconfirmed waits again. */
  async #send(link: Link, messages: readonly Outgoing[]): Promise<void> {
    const unsent = (await Promise.all(messages.map((message) => this.#sendOne(link, message)))).flat()
    if (unsent.length === 0 || this.#closing !== null) return
    // In their place again (older than anything buffered since); duplicates are harmless hints.
    if (this.#live && this.#link !== null && this.#link !== link) void this.#send(this.#link, unsent)
    else this.#enqueue(unsent, true)
  }

  /** Resolves with the message when it has to be sent again, empty when the broker took it. */
  #sendOne(link: Link, message: Outgoing): Promise<Outgoing[]> {
    return new Promise((resolve) => {
      const { userId, body, messageId, timestamp } = message
      const properties = { persistent: true, contentType: 'application/json', messageId, timestamp }
      try {
        link.publisher.publish(
          EXCHANGE,
          routingKeyOf(userId),
          body,
          { ...properties, appId: this.#nodeId },
          (error) => {
            if (error === null || error === undefined) return resolve([])
            if (error instanceof Error && error.message === NACKED) {
              // Refused for good (e.g. a broker-side limit): sending it again would be refused again.
              this.#report(error, 'amqp publish')
              return resolve([])
            }
            resolve([message])
          },
        )
      } catch (error) {
        // A closed channel throws this; its loss is (being) handled, and the message waits.
        if (error instanceof IllegalOperationError) {
          this.#lose(link.session, error, 'publish')
          return resolve([message])
        }
        this.#report(error, 'amqp publish')
        resolve([])
      }
    })
  }

  #notify(call: (listener: EventBusListener) => void, context: string): void {
    const listener = this.#listener
    if (listener === null) return
    try {
      call(listener)
    } catch (error) {
      this.#report(error, context)
    }
  }

  #report(error: unknown, context: string): void {
    try {
      this.#onError(error, context)
    } catch {
      // A failing error handler must not take the bus down with it.
    }
  }
}

let published = 0

/** A message for one user's key: a change `{userId, payload}` or a hint `{userId, resync: true}`. */
const envelope = (userId: string, body: Record<string, unknown>): Outgoing => ({
  seq: ++published,
  userId,
  body: Buffer.from(JSON.stringify(body)),
  messageId: randomUUID(),
  timestamp: Math.floor(Date.now() / 1000),
})

const isRecord = (value: unknown): value is Record<string, unknown> =>
  typeof value === 'object' && value !== null && !Array.isArray(value)

/** What a message carries, or null for anything but what `envelope` makes, under its user's key. */
function decode(message: ConsumeMessage): ChangeEvent | { userId: string; resync: true } | null {
  let body: unknown
  try {
    body = JSON.parse(message.content.toString('utf8'))
  } catch {
    return null
  }
  if (!isRecord(body) || typeof body.userId !== 'string') return null
  if (message.fields.routingKey !== routingKeyOf(body.userId)) return null
  if (body.resync === true) return { userId: body.userId, resync: true }
  return isRecord(body.payload) ? { userId: body.userId, payload: body.payload } : null
}

const reasonOf = (error: unknown): string => (error instanceof Error ? error.message : String(error))

const ignore = (): void => {}

/** Without an onError, problems still show, as process warnings. */
const warn = (error: unknown, context: string): void => {
  process.emitWarning(`AmqpEventBus ${context}: ${reasonOf(error)}`)
}

import type { Channel, ConfirmChannel, ConsumeMessage } from 'amqplib'
import { IllegalOperationError } from 'amqplib'
import type { ChangeEvent, EventBus, EventBusListener } from '../../ports/event-bus.js'
import { type Backoff, ConnectionLifecycle, reasonOf, type Session } from './connection-lifecycle.js'
import {
  decodeMessage,
  encodeChange,
  encodeResyncHint,
  type Outgoing,
  publishOptions,
} from './message-codec.js'
import {
  DEAD_LETTER_QUEUE,
  declareTopology,
  EXCHANGE,
  isRoutable,
  routingKeyOf,
  UserBindings,
} from './topology.js'
import { UnsentBuffer } from './unsent-buffer.js'

// The names of the topology are part of this module's API (operators and tests look for them).
export { DEAD_LETTER_EXCHANGE, DEAD_LETTER_QUEUE, EXCHANGE, routingKeyOf } from './topology.js'

const DEFAULT_BUFFER_LIMIT = 10_000
const DEFAULT_RECONNECT_DELAY_MS: Backoff = { initial: 100, max: 5_000 }
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

/** A connection whose channels are open and whose queue is consumed. */
interface Link {
  session: Session
  publisher: ConfirmChannel
  consumer: Channel
  /** The users bound on this link's queue, which `#applyBindings` brings to `#followed`. */
  bindings: UserBindings
}

/**
 * The event bus between API nodes, on RabbitMQ. Each node consumes an exclusive, server-named
 * queue bound to `sync.events` once per followed user (topology.ts). It reconnects on its own
 * (connection-lifecycle.ts); every reconnect declares everything again, rebinds, sends what
 * was buffered (unsent-buffer.ts), then calls `resync`.
 *
 * The constructor does not connect: `start()` does, and resolves after the first attempt
 * whichever way it went, so a server starts while RabbitMQ is down (and says so in /readyz).
 */
export class AmqpEventBus implements EventBus {
  readonly #nodeId: string
  readonly #onError: (error: unknown, context: string) => void
  readonly #connection: ConnectionLifecycle<Link>
  readonly #buffer: UnsentBuffer<Outgoing>
  readonly #followed = new Set<string>()
  #listener: EventBusListener | null = null
  #link: Link | null = null

  constructor(options: AmqpEventBusOptions) {
    this.#nodeId = options.nodeId
    this.#onError = options.onError ?? warn
    this.#buffer = new UnsentBuffer(options.bufferLimit ?? DEFAULT_BUFFER_LIMIT)
    this.#connection = new ConnectionLifecycle({
      url: options.url,
      nodeId: options.nodeId,
      reconnectDelayMs: options.reconnectDelayMs ?? DEFAULT_RECONNECT_DELAY_MS,
      hooks: {
        setUp: (session) => this.#setUp(session),
        ready: (link, afterOutage) => this.#ready(link, afterOutage),
        lost: () => {
          this.#link = null
        },
        unblocked: () => {
          if (this.#link !== null) this.#flush(this.#link)
        },
        report: (error, context) => this.#report(error, context),
      },
    })
  }

  /**
   * Connects for the first time. Never rejects: after a failed first attempt it resolves too,
   * and the bus keeps retrying in the background. Calling it again returns the same promise.
   */
  start(): Promise<void> {
    return this.#connection.start()
  }

  async publish(events: readonly ChangeEvent[]): Promise<void> {
    if (this.#connection.isClosed) return
    const messages = events.flatMap((event) => this.#encode(event) ?? [])
    const link = this.#link
    if (link !== null && this.#connection.live && !this.#connection.blocked) await this.#send(link, messages)
    else this.#buffer.add(messages)
  }

  listen(listener: EventBusListener): void {
    this.#listener = listener
  }

  async follow(userId: string): Promise<void> {
    if (!isRoutable(userId)) throw new TypeError(`not a routable user id: ${JSON.stringify(userId)}`)
    if (this.#connection.isClosed) return
    this.#followed.add(userId)
    await this.#applyBindings()
  }

  async unfollow(userId: string): Promise<void> {
    this.#followed.delete(userId)
    await this.#applyBindings()
  }

  async ping(): Promise<void> {
    this.#connection.assertUsable()
  }

  close(): Promise<void> {
    if (!this.#connection.isClosed) {
      // Nothing waits for a broker that will not be reached again.
      this.#buffer.clear()
      this.#followed.clear()
      this.#link = null
    }
    return this.#connection.close()
  }

  /** The channels, the topology, this node's queue and its consumer, then the bindings, on a fresh connection. */
  async #setUp(session: Session): Promise<Link> {
    const { connection } = session
    const publisher = await connection.createConfirmChannel()
    this.#connection.watch(session, publisher)
    const consumer = await connection.createChannel()
    this.#connection.watch(session, consumer)
    const queue = await declareTopology(publisher, consumer)
    const link: Link = { session, publisher, consumer, bindings: new UserBindings(consumer, queue) }
    await consumer.consume(queue, (message) => this.#receive(link, message))
    this.#link = link
    await link.bindings.converge(this.#followed)
    return link
  }

  #ready(link: Link, afterOutage: boolean): void {
    const dropped = this.#buffer.hasDrops
    this.#flush(link)
    if (afterOutage || dropped) this.#notify((listener) => listener.resync(), 'listener.resync')
  }

  #applyBindings(): Promise<void> {
    const link = this.#link
    // Without a link the next connection binds everything; a failure here is a lost connection.
    return link === null ? Promise.resolve() : link.bindings.converge(this.#followed).catch(ignore)
  }

  #receive(link: Link, message: ConsumeMessage | null): void {
    // amqplib closes the channel when this throws: nothing may escape.
    try {
      if (message === null) {
        this.#connection.lose(link.session, 'the broker cancelled the consumer', 'consume')
        return
      }
      if (message.properties.appId === this.#nodeId) {
        link.consumer.ack(message)
        return
      }
      const decoded = decodeMessage(message.content, message.fields.routingKey)
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

  /** The message of an event, or null (reported) for one that could never be delivered. */
  #encode(event: ChangeEvent): Outgoing | null {
    try {
      return encodeChange(event)
    } catch (error) {
      this.#report(error, 'amqp publish')
      return null
    }
  }

  /**
   * Sends what was buffered, then a resync hint under the key of each user whose events were
   * dropped (the port: "then a resync is due"): it reaches exactly the nodes that follow them.
   */
  #flush(link: Link): void {
    const { messages, droppedUsers, forgotten } = this.#buffer.drain()
    for (const userId of droppedUsers) messages.push(encodeResyncHint(userId))
    if (forgotten > 0) {
      const lost = `${forgotten} dropped events of users beyond ${this.#buffer.limit}: no resync hint`
      this.#report(new Error(lost), 'amqp publish')
    }
    if (messages.length > 0) void this.#send(link, messages)
  }

  /** Resolves once the broker confirmed each message; what a lost channel left unconfirmed waits again. */
  async #send(link: Link, messages: readonly Outgoing[]): Promise<void> {
    const unsent = (await Promise.all(messages.map((message) => this.#sendOne(link, message)))).flat()
    if (unsent.length === 0 || this.#connection.isClosed) return
    // In their place again (older than anything buffered since); duplicates are harmless hints.
    if (this.#connection.live && this.#link !== null && this.#link !== link)
      void this.#send(this.#link, unsent)
    else this.#buffer.putBack(unsent)
  }

  /** Resolves with the message when it has to be sent again, empty when the broker took it. */
  #sendOne(link: Link, message: Outgoing): Promise<Outgoing[]> {
    return new Promise((resolve) => {
      const options = publishOptions(message, this.#nodeId)
      try {
        link.publisher.publish(EXCHANGE, routingKeyOf(message.userId), message.body, options, (error) => {
          if (error === null || error === undefined) return resolve([])
          if (error instanceof Error && error.message === NACKED) {
            // Refused for good (e.g. a broker-side limit): sending it again would be refused again.
            this.#report(error, 'amqp publish')
            return resolve([])
          }
          resolve([message])
        })
      } catch (error) {
        // A closed channel throws this; its loss is (being) handled, and the message waits.
        if (error instanceof IllegalOperationError) {
          this.#connection.lose(link.session, error, 'publish')
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

const ignore = (): void => {}

/** Without an onError, problems still show, as process warnings. */
const warn = (error: unknown, context: string): void => {
  process.emitWarning(`AmqpEventBus ${context}: ${reasonOf(error)}`)
}

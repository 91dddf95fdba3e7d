import type { ChangeEvent, EventBus, EventBusListener } from '../../ports/event-bus.js'

/** What a LocalBroker needs of each bus attached to it. */
interface LocalSubscriber {
  readonly nodeId: string
  /** True when the user's events are to be routed to this node (RabbitMQ's binding). */
  routes(userId: string): boolean
  /** Hands over events routed to this node; called asynchronously, in publish order. */
  receive(events: readonly ChangeEvent[]): void
}

/**
 * The in-process stand-in for RabbitMQ's `sync.events` exchange: routes what one bus publishes
 * to every other attached bus that follows the user. Several buses on one broker are several
 * nodes in one process (tests); in the embedded mode each bus has a broker of its own.
 */
export class LocalBroker {
  readonly #subscribers = new Set<LocalSubscriber>()

  /** Attaches a node; returns the function that detaches it. */
  attach(subscriber: LocalSubscriber): () => void {
    this.#subscribers.add(subscriber)
    return () => {
      this.#subscribers.delete(subscriber)
    }
  }

  /**
   * Routes at publish time, as an exchange does, and delivers later: a listener never runs
   * inside `publish`'s call stack, where it could re-enter the publisher's transaction code.
   * setImmediate runs callbacks in the order they were queued, so one user's events arrive in
   * publish order.
   */
  route(fromNodeId: string, events: readonly ChangeEvent[]): void {
    for (const subscriber of this.#subscribers) {
      // The publishing node delivers to its own clients itself (the port), as AMQP's appId check.
      if (subscriber.nodeId === fromNodeId) continue
      const routed = events.filter((event) => subscriber.routes(event.userId)).map(copyOf)
      if (routed.length > 0) setImmediate(() => subscriber.receive(routed))
    }
  }
}

/** A copy as the wire would make it, so no node shares (or can change) another's objects. */
const copyOf = (event: ChangeEvent): ChangeEvent => JSON.parse(JSON.stringify(event)) as ChangeEvent

export interface LocalEventBusOptions {
  /** This node's id; events are never delivered back to the node that published them. */
  nodeId: string
  /** Shared by the buses that are to reach each other; a private one when omitted. */
  broker?: LocalBroker
  /** Gets what the listener threw (the other events are still delivered); a process warning when omitted. */
  onError?: (error: unknown, context: string) => void
}

/**
 * The event bus of the embedded, single-process mode. Alone on its broker it delivers to
 * nobody, which is right: the only node delivers to its own clients itself. It cannot lose
 * deliveries, so it never calls `resync`.
 */
export class LocalEventBus implements EventBus {
  readonly #nodeId: string
  readonly #broker: LocalBroker
  readonly #onError: (error: unknown, context: string) => void
  readonly #followed = new Set<string>()
  readonly #detach: () => void
  #listener: EventBusListener | null = null
  #closed = false

  constructor({ nodeId, broker = new LocalBroker(), onError = warn }: LocalEventBusOptions) {
    this.#nodeId = nodeId
    this.#broker = broker
    this.#onError = onError
    this.#detach = broker.attach({
      nodeId,
      routes: (userId) => this.#followed.has(userId),
      receive: (events) => this.#receive(events),
    })
  }

  async publish(events: readonly ChangeEvent[]): Promise<void> {
    if (this.#closed || events.length === 0) return
    this.#broker.route(this.#nodeId, events)
  }

  listen(listener: EventBusListener): void {
    this.#listener = listener
  }

  async follow(userId: string): Promise<void> {
    if (!this.#closed) this.#followed.add(userId)
  }

  async unfollow(userId: string): Promise<void> {
    this.#followed.delete(userId)
  }

  async ping(): Promise<void> {
    if (this.#closed) throw new Error('event bus closed')
  }

  async close(): Promise<void> {
    if (this.#closed) return
    this.#closed = true
    this.#followed.clear()
    this.#detach()
  }

  #receive(events: readonly ChangeEvent[]): void {
    for (const event of events) {
      // Checked again at delivery: an unfollow (or close) since routing stops it, as on RabbitMQ.
      if (this.#closed || !this.#followed.has(event.userId)) continue
      try {
        this.#listener?.change(event)
      } catch (error) {
        this.#onError(error, 'listener.change')
      }
    }
  }
}

/** Without an onError, a throwing listener still shows, but does not crash the process from a timer. */
const warn = (error: unknown, context: string): void => {
  process.emitWarning(`LocalEventBus ${context}: ${error instanceof Error ? error.message : String(error)}`)
}

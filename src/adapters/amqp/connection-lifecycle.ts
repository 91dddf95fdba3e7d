import type { Channel, ChannelModel } from 'amqplib'
import { connect } from 'amqplib'

/** A broker host that drops packets would otherwise hold start() for the OS's minutes-long SYN retries. */
const CONNECT_TIMEOUT_MS = 10_000
/** ±20% on every reconnect delay, so nodes cut off together do not come back in lockstep. */
const JITTER = 0.2

/** Reconnect backoff: doubles from `initial` up to `max`, in milliseconds. */
export interface Backoff {
  initial: number
  max: number
}

/** One connection; `lost` is set once, by whichever event notices its end first. */
export interface Session {
  connection: ChannelModel
  lost: boolean
}

/** What the bus does at each step of a connection's life; `L` is what it sets up on one. */
export interface LifecycleHooks<L> {
  /** Sets up a fresh connection (channels, topology, bindings); a rejection is a lost connection. */
  setUp(session: Session): Promise<L>
  /**
   * The connection is set up and was not lost meanwhile: publishes may go straight to the broker.
   * `afterOutage` when a connection was lost, or an attempt failed, since the last one was ready.
   */
  ready(link: L, afterOutage: boolean): void
  /** The current connection is lost: what was set up on it is gone. */
  lost(): void
  /** The broker reads again after a resource alarm, on a ready connection. */
  unblocked(): void
  /** Every problem goes here; none is thrown. */
  report(error: unknown, context: string): void
}

export interface ConnectionLifecycleOptions<L> {
  url: string
  /** Names the connection in the broker's management UI. */
  nodeId: string
  reconnectDelayMs: Backoff
  hooks: LifecycleHooks<L>
}

/**
 * The life of the bus's broker connection: connects, notices its loss (on the connection or
 * any of its channels), reconnects with backoff until closed, and knows whether the bus can
 * deliver (for `ping`). What is set up on a connection is the bus's, through `hooks`.
 */
export class ConnectionLifecycle<L> {
  readonly #url: string
  readonly #nodeId: string
  readonly #delays: Backoff
  readonly #hooks: LifecycleHooks<L>
  #session: Session | null = null
  /** The current connection is set up (bindings restored, buffer sent). */
  #live = false
  #blocked: string | null = null
  #down = { since: new Date(), reason: 'not connected yet' }
  #wasDown = false
  #failures = 0
  #timer: NodeJS.Timeout | null = null
  #attempt: Promise<void> | null = null
  #started: Promise<void> | null = null
  #closing: Promise<void> | null = null

  constructor(options: ConnectionLifecycleOptions<L>) {
    this.#url = options.url
    this.#nodeId = options.nodeId
    this.#delays = options.reconnectDelayMs
    this.#hooks = options.hooks
  }

  /** The first attempt; never rejects (a failure schedules the next one). Idempotent. */
  start(): Promise<void> {
    this.#started ??= this.#connect()
    return this.#started
  }

  /** Stops reconnecting and releases the connection, an attempt in flight included. Idempotent. */
  close(): Promise<void> {
    this.#closing ??= this.#shutdown()
    return this.#closing
  }

  get isClosed(): boolean {
    return this.#closing !== null
  }

  get live(): boolean {
    return this.#live
  }

  /** The broker raised a resource alarm and reads nothing: publishes had better wait. */
  get blocked(): boolean {
    return this.#blocked !== null
  }

  /** Returns while the bus can deliver; throws why not otherwise (for /readyz). */
  assertUsable(): void {
    if (this.#closing !== null) throw new Error('RabbitMQ event bus closed')
    if (this.#blocked !== null) throw new Error(`RabbitMQ connection blocked: ${this.#blocked}`)
    if (!this.#live) {
      throw new Error(
        `RabbitMQ connection down since ${this.#down.since.toISOString()}: ${this.#down.reason}`,
      )
    }
  }

  /** A channel closes on any error (AMQP 0-9-1): that is a lost connection, and reconnects. */
  watch(session: Session, channel: Channel): void {
    channel.on('error', (error: Error) => this.lose(session, error, 'channel error'))
    channel.on('close', () => this.lose(session, 'channel closed', 'channel close'))
  }

  /** Marks the session lost (once), reports why and schedules a reconnect. */
  lose(session: Session | null, error: unknown, context: string): void {
    if (session !== null) {
      if (session.lost) return
      this.#release(session)
    }
    if (this.#closing !== null) return
    if (!this.#wasDown) this.#down = { since: new Date(), reason: reasonOf(error) }
    else this.#down.reason = reasonOf(error)
    this.#wasDown = true
    this.#hooks.report(error, `amqp ${context}`)
    this.#scheduleReconnect()
  }

  async #shutdown(): Promise<void> {
    if (this.#timer !== null) clearTimeout(this.#timer)
    this.#live = false
    const session = this.#session
    this.#session = null
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
      this.#listen(current)
      if (this.#closing !== null) {
        current.lost = true
        await connection.close().catch(ignore)
        return
      }
      this.#session = current
      const link = await this.#hooks.setUp(current)
      if (current.lost || this.#closing !== null) return
      // Synchronously from here: nothing published meanwhile can overtake the buffered events.
      this.#live = true
      this.#failures = 0
      this.#hooks.ready(link, this.#wasDown)
      this.#wasDown = false
    } catch (error) {
      this.lose(session, error, 'connect')
    }
  }

  /** Listeners first thing: an 'error' event without one would be thrown. */
  #listen(session: Session): void {
    const { connection } = session
    connection.on('error', (error: Error) => this.lose(session, error, 'connection error'))
    connection.on('close', (error?: Error) => this.lose(session, error ?? 'closed by the broker', 'close'))
    connection.on('blocked', (reason: string) => this.#setBlocked(session, reason))
    connection.on('unblocked', () => this.#setBlocked(session, null))
  }

  /** Marks a session lost and closes what is left of it: after a channel error the connection is still open. */
  #release(session: Session): void {
    session.lost = true
    session.connection.close().catch(ignore)
    if (this.#session !== session) return
    this.#session = null
    this.#hooks.lost()
    this.#live = false
    this.#blocked = null
  }

  #scheduleReconnect(): void {
    if (this.#timer !== null) return
    const delay = reconnectDelay(this.#failures, this.#delays)
    this.#failures += 1
    this.#timer = setTimeout(() => void this.#connect(), delay)
    // Retrying alone must not keep a process alive that has nothing else to do.
    this.#timer.unref()
  }

  #setBlocked(session: Session, reason: string | null): void {
    if (session !== this.#session) return
    this.#blocked = reason
    // The broker reads nothing while it is blocked (a resource alarm): publishes waited in the buffer.
    if (reason === null && this.#live) this.#hooks.unblocked()
  }
}

/**
 * The wait before the reconnect that follows `failures` failed ones: `initial` doubled per
 * failure up to `max`, then ±20% jitter, never past `max`. `random` is Math.random's stand-in.
 */
export function reconnectDelay(failures: number, { initial, max }: Backoff, random = Math.random): number {
  const base = Math.min(max, initial * 2 ** failures)
  return Math.min(max, base * (1 - JITTER + random() * 2 * JITTER))
}

export const reasonOf = (error: unknown): string => (error instanceof Error ? error.message : String(error))

const ignore = (): void => {}

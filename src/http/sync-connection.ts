import type { FastifyBaseLogger } from 'fastify'
import type { RawData, WebSocket } from 'ws'
import { changeMessage, encodeJournalCursor, type JournalEntry } from '../domain/journal.js'
import type { User } from '../domain/model.js'
import type { AppServices } from '../services/app-services.js'
import type { SyncWatcher } from '../services/sync-hub.js'
import { toAppError } from './error-response.js'
import { parseInput } from './request-input.js'
import { socketCursor } from './routes/sync-schemas.js'

export interface SyncConnectionOptions {
  /** How often sockets are pinged; a peer that misses one ping is dropped. */
  pingIntervalMs: number
  /**
   * Bytes a socket may have queued unsent. Beyond, sending pauses until the client has read
   * them, so a client catching up on a long backlog costs at most this much memory.
   */
  maxBufferedBytes: number
  /**
   * How long a paused socket may take to read its queue: a client that does not is too slow to
   * follow, and is told to reconnect and catch up from its cursor, and dropped.
   */
  slowClientMs: number
}

/** Whose socket it is: the user, and the session token their handshake gave (checked again on each ping). */
export interface SyncSession {
  user: User
  token: string
}

/** What every socket of this node shares. */
export interface SyncConnectionContext {
  services: AppServices
  options: SyncConnectionOptions
  log: FastifyBaseLogger
}

/** Close codes of the sync socket (4000–4999 are the application's). */
export const SYNC_CLOSE = {
  /** The cursor given is older than the journal kept: list from scratch (as HTTP 410). */
  cursorExpired: 4410,
  /** The cursor given is not one this server handed out (as HTTP 400). */
  badCursor: 4400,
  /** The session was logged out or expired. */
  unauthorized: 4401,
  /** The client did not read fast enough: reconnect with your cursor. */
  tooSlow: 4408,
  /** The client sent pings far more often than a heartbeat needs (as HTTP 429). */
  tooManyPings: 4429,
} as const

/**
 * Pings a client may send per window: a heartbeat needs one every few seconds. Each ping is
 * answered with a pong the client may not be reading; past this the socket is closed, so a
 * flood of pings cannot queue pongs in the server's memory.
 */
const PINGS_PER_WINDOW = 30
const PING_WINDOW_MS = 10_000

/** Entries read from the journal per query while catching up. */
const PAGE = 200
/** A socket that does not complete its closing handshake in this time is cut. */
const CLOSE_TIMEOUT_MS = 5000
/** How often a paused socket's queue is looked at. */
const DRAIN_POLL_MS = 20

/**
 * One client's live feed. The socket never forwards what the bus brought: a wake only makes it
 * read the journal after the last position it sent, so every change arrives exactly once and
 * in order, whatever the bus lost or repeated, and a reconnect with the last cursor received
 * continues without a gap.
 */
export class SyncConnection implements SyncWatcher {
  #cursor = 0
  #started = false
  #draining = false
  #again = false
  #alive = true
  #closed = false
  #unwatch: (() => void) | undefined
  #closeTimer: NodeJS.Timeout | undefined
  #pingWindowStart = 0
  #pings = 0

  private readonly user: User
  private readonly token: string
  private readonly services: AppServices
  private readonly options: SyncConnectionOptions
  private readonly log: FastifyBaseLogger

  constructor(
    private readonly ws: WebSocket,
    session: SyncSession,
    { services, options, log }: SyncConnectionContext,
  ) {
    this.user = session.user
    this.token = session.token
    this.services = services
    this.options = options
    this.log = log
    ws.on('pong', () => {
      this.#alive = true
    })
    ws.on('message', (data, isBinary) => this.#onMessage(data, isBinary))
    ws.on('error', () => ws.terminate())
    ws.once('close', () => {
      this.#closed = true
      clearTimeout(this.#closeTimer)
      this.#unwatch?.()
    })
  }

  /** Follows the user, then catches up from `rawCursor` (none: starts at the newest position). */
  async start(rawCursor: string | null): Promise<void> {
    try {
      const unwatch = await this.services.hub.watch(this.user.id, this)
      if (this.#closed) return unwatch()
      this.#unwatch = unwatch
      const after = parseInput(socketCursor, rawCursor)
      this.#cursor = await this.services.sync.startingPosition(this.user, after)
      this.#send({ type: 'hello', userId: this.user.id, cursor: encodeJournalCursor(this.#cursor) })
      this.#started = true
      this.wake()
    } catch (error) {
      this.#fail(error)
    }
  }

  wake(): void {
    if (this.#closed || !this.#started) return
    if (this.#draining) {
      this.#again = true
      return
    }
    void this.#drain()
  }

  /** Called by the socket server's timer. */
  heartbeat(): void {
    if (this.#closed) return
    if (!this.#alive) {
      this.ws.terminate()
      return
    }
    this.#alive = false
    this.ws.ping()
    this.services.auth.authenticate(this.token).catch(() => {
      void this.close(SYNC_CLOSE.unauthorized, 'the session has ended: log in again')
    })
  }

  /** Closes with a handshake; cuts the socket if the peer does not answer it. */
  close(code: number, reason: string): Promise<void> {
    return new Promise((resolve) => {
      if (this.ws.readyState === this.ws.CLOSED) return resolve()
      this.ws.once('close', () => resolve())
      if (this.#closeTimer === undefined) {
        this.#closeTimer = setTimeout(() => this.ws.terminate(), CLOSE_TIMEOUT_MS)
        this.#closeTimer.unref()
        this.ws.close(code, reason)
      }
    })
  }

  /** Sends what the journal holds after the cursor, page by page, until nothing is left. */
  async #drain(): Promise<void> {
    this.#draining = true
    try {
      do {
        this.#again = false
        // CURSOR_EXPIRED when compaction overtook the socket: the client lists from scratch.
        const page = await this.services.sync.follow(this.user, { after: this.#cursor, limit: PAGE })
        if (!(await this.#sendAll(page.entries))) return
        if (page.hasMore) this.#again = true
      } while (this.#again && !this.#closed)
    } catch (error) {
      this.#fail(error)
    } finally {
      this.#draining = false
    }
  }

  /** Sends entries in order, moving the cursor; false once the socket is closed or dropped. */
  async #sendAll(entries: readonly JournalEntry[]): Promise<boolean> {
    for (const entry of entries) {
      if (this.#closed) return false
      if (this.ws.bufferedAmount > this.options.maxBufferedBytes && !(await this.#drained())) {
        this.log.warn(
          { userId: this.user.id, buffered: this.ws.bufferedAmount },
          'sync socket too slow: dropped',
        )
        void this.close(SYNC_CLOSE.tooSlow, 'too slow: reconnect and catch up from your cursor')
        return false
      }
      this.ws.send(JSON.stringify(changeMessage(entry)))
      this.#cursor = entry.seq
    }
    return true
  }

  /** Waits for the client to read its queue down to half the limit; false if it does not in time. */
  async #drained(): Promise<boolean> {
    const deadline = Date.now() + this.options.slowClientMs
    while (this.ws.bufferedAmount > this.options.maxBufferedBytes / 2) {
      if (this.#closed || Date.now() >= deadline) return false
      await new Promise((resolve) => setTimeout(resolve, DRAIN_POLL_MS))
    }
    return !this.#closed
  }

  #onMessage(data: RawData, isBinary: boolean): void {
    // Browsers cannot send ping frames: `{"type":"ping"}` is the application-level heartbeat.
    if (isBinary) return
    try {
      const message = JSON.parse(data.toString()) as { type?: unknown }
      if (message.type !== 'ping') return
      const now = Date.now()
      if (now - this.#pingWindowStart >= PING_WINDOW_MS) {
        this.#pingWindowStart = now
        this.#pings = 0
      }
      this.#pings += 1
      // Past the bound, or with pongs piling up unread, the client is dropped; it reconnects
      // from its cursor like any client that was too slow.
      if (this.#pings > PINGS_PER_WINDOW || this.ws.bufferedAmount > this.options.maxBufferedBytes) {
        this.log.warn({ userId: this.user.id, pings: this.#pings }, 'sync socket flooding pings: dropped')
        void this.close(SYNC_CLOSE.tooManyPings, 'too many pings: one every few seconds is enough')
        return
      }
      this.#send({ type: 'pong', cursor: encodeJournalCursor(this.#cursor) })
    } catch {
      // Not JSON: ignored, like any message the protocol does not define.
    }
  }

  #send(message: Record<string, unknown>): void {
    if (!this.#closed) this.ws.send(JSON.stringify(message))
  }

  /** Tells the client why, as an error message and a close code, and closes. */
  #fail(error: unknown): void {
    const appError = toAppError(error)
    if (appError.code === 'INTERNAL')
      this.log.error({ err: error, userId: this.user.id }, 'sync socket failed')
    this.#send({ type: 'error', error: { code: appError.code, message: appError.message } })
    const code =
      appError.code === 'CURSOR_EXPIRED'
        ? SYNC_CLOSE.cursorExpired
        : appError.code === 'INVALID_REQUEST'
          ? SYNC_CLOSE.badCursor
          : 1011
    void this.close(code, appError.code)
  }
}

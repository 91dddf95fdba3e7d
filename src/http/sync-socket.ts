import { type IncomingMessage, STATUS_CODES } from 'node:http'
import type { Duplex } from 'node:stream'
import type { FastifyInstance } from 'fastify'
import { type WebSocket, WebSocketServer } from 'ws'
import { AppError } from '../domain/errors.js'
import type { User } from '../domain/model.js'
import type { AppServices } from '../services/app-services.js'
import type { Authenticated } from '../services/auth-service.js'
import { clientIpOf } from './client-ip.js'
import { STATUS, toAppError } from './error-response.js'
import { PerUserSlots } from './per-user-slots.js'
import { assertNoRepeatedParameter } from './query-strings.js'
import type { RateLimits } from './rate-limits.js'
import { SyncConnection, type SyncConnectionContext, type SyncConnectionOptions } from './sync-connection.js'

export interface SyncSocketOptions extends SyncConnectionOptions {
  /** The path clients connect to (API.md: `WS /sync/ws`). */
  path: string
  /** Sockets one user may hold on this node; one more answers 429. */
  maxSocketsPerUser: number
  /** Reads the session cookie from a Cookie header (the app's cookie parser). */
  parseCookie(header: string): Record<string, string | undefined>
  sessionCookie: string
  /** The app's rate limits: upgrades count against the same budgets as requests. */
  limits: RateLimits
  /** Whether X-Forwarded-For names the client (TRUST_PROXY), as for every other request. */
  trustProxy: boolean
}

/** Largest message a client may send: it only ever sends `{"type":"ping"}`. */
const MAX_CLIENT_MESSAGE_BYTES = 4096

/**
 * `WS /sync/ws` (API.md, Sync): live changes over a WebSocket, authenticated at the handshake
 * by `?token=`, an `Authorization: Bearer` header, or the session cookie. Upgrades are taken
 * off the HTTP server before Fastify sees them, so the token in the query string is never
 * written to the request log.
 */
export function attachSyncSocket(
  app: FastifyInstance,
  services: AppServices,
  options: SyncSocketOptions,
): { readonly connections: number; close(): Promise<void> } {
  const server = new SyncSocketServer(app, services, options)
  const onUpgrade = (request: IncomingMessage, socket: Duplex, head: Buffer) =>
    server.upgrade(request, socket, head)
  app.server.on('upgrade', onUpgrade)

  // One timer for every socket: a peer that did not answer the last ping is dropped, and every
  // session is checked again, so a logout or an expired session ends its sockets too.
  const heartbeat = setInterval(() => server.heartbeat(), options.pingIntervalMs)
  heartbeat.unref()

  return {
    get connections() {
      return server.connections.size
    },
    async close() {
      clearInterval(heartbeat)
      app.server.off('upgrade', onUpgrade)
      await server.close()
    },
  }
}

/** The sockets of this node: who may open one, and the connections open. */
class SyncSocketServer {
  readonly connections = new Set<SyncConnection>()
  readonly #wss = new WebSocketServer({ noServer: true, maxPayload: MAX_CLIENT_MESSAGE_BYTES })
  readonly #sockets: PerUserSlots
  readonly #context: SyncConnectionContext

  constructor(
    app: FastifyInstance,
    private readonly services: AppServices,
    private readonly options: SyncSocketOptions,
  ) {
    this.#sockets = new PerUserSlots(options.maxSocketsPerUser)
    this.#context = { services, options, log: app.log }
    // A handshake ws cannot take (a bad version or key) is answered in the contract's shape.
    this.#wss.on('wsClientError', (error: Error, socket: Duplex) =>
      refuse(
        socket,
        new AppError('INVALID_REQUEST', `not a WebSocket handshake this server takes: ${error.message}`),
      ),
    )
  }

  upgrade(request: IncomingMessage, socket: Duplex, head: Buffer): void {
    const url = new URL(request.url ?? '/', 'http://localhost')
    const ip = clientIpOf(request, this.options.trustProxy)
    socket.on('error', () => socket.destroy())
    try {
      assertNoRepeatedParameter(request.url ?? '/')
    } catch (error) {
      refuse(socket, toAppError(error))
      return
    }
    if (url.pathname !== this.options.path) {
      // Counted like a request for no route: a 404 costs the address its budget, then 429s.
      this.options.limits.countUnknownRoute(ip).then(
        () => refuse(socket, new AppError('NOT_FOUND', 'no such route')),
        (error: unknown) => refuse(socket, toAppError(error)),
      )
      return
    }
    // A failed handshake counts against the address's unauthenticated budget (429 once spent),
    // a valid one against its user's, like any request.
    this.options.limits
      .authenticateFrom(ip, () => authenticateUpgrade(request, url, this.services, this.options))
      .then(
        (auth) => this.#open(auth, { request, socket, head, url }),
        (error: unknown) => refuse(socket, toAppError(error)),
      )
  }

  /** Opens the socket of an authenticated handshake, within the user's bound of sockets. */
  #open({ user, token }: { user: User; token: string }, handshake: Handshake): void {
    const { request, socket, head, url } = handshake
    const release = this.#sockets.take(user.id)
    if (!release) {
      const message = `at most ${this.options.maxSocketsPerUser} sync sockets per user`
      refuse(socket, new AppError('TOO_MANY_CONNECTIONS', message))
      return
    }
    let opened = false
    this.#wss.handleUpgrade(request, socket, head, (ws: WebSocket) => {
      opened = true
      const connection = new SyncConnection(ws, { user, token }, this.#context)
      this.connections.add(connection)
      ws.once('close', () => {
        this.connections.delete(connection)
        release()
      })
      void connection.start(url.searchParams.get('cursor'))
    })
    // ws refuses a malformed handshake (a bad version or key) itself, without calling
    // back; it calls back synchronously otherwise. A refused one must give its slot back.
    if (!opened) release()
  }

  heartbeat(): void {
    for (const connection of this.connections) connection.heartbeat()
  }

  async close(): Promise<void> {
    await Promise.all(
      [...this.connections].map((connection) => connection.close(1001, 'server shutting down')),
    )
    this.#wss.close()
  }
}

interface Handshake {
  request: IncomingMessage
  socket: Duplex
  head: Buffer
  url: URL
}

async function authenticateUpgrade(
  request: IncomingMessage,
  url: URL,
  services: AppServices,
  options: SyncSocketOptions,
): Promise<Authenticated & { token: string }> {
  const bearer = /^Bearer\s+(\S+)$/i.exec(request.headers.authorization ?? '')?.[1]
  const explicit = url.searchParams.get('token') ?? bearer
  const cookie = options.parseCookie(request.headers.cookie ?? '')[options.sessionCookie]
  const token = explicit ?? cookie
  // A cookie rides along with any page's request: a page of another origin must not open a
  // socket on the user's behalf (cross-site WebSocket hijacking). Browsers always send Origin.
  if (explicit === undefined && cookie !== undefined && !sameOrigin(request)) {
    throw new AppError('UNAUTHORIZED', 'a cookie-authenticated socket must come from this origin')
  }
  const auth = await services.auth.authenticate(token)
  return { ...auth, token: token as string }
}

function sameOrigin(request: IncomingMessage): boolean {
  const origin = request.headers.origin
  if (origin === undefined) return true
  try {
    return new URL(origin).host === request.headers.host
  } catch {
    return false
  }
}

/**
 * Answers a refused handshake as plain HTTP with the contract's error body, then hangs up;
 * with Retry-After when the error says when to come back (a 429, or the database down: 503).
 */
function refuse(socket: Duplex, error: AppError): void {
  const status = STATUS[error.code]
  const message = error.code === 'INTERNAL' ? 'internal error' : error.message
  const body = JSON.stringify({ error: { code: error.code, message } })
  const { retryAfterSeconds } = error.details
  const retryAfter = typeof retryAfterSeconds === 'number' ? `Retry-After: ${retryAfterSeconds}\r\n` : ''
  socket.end(
    `HTTP/1.1 ${status} ${STATUS_CODES[status] ?? 'Error'}\r\n` +
      'Content-Type: application/json; charset=utf-8\r\n' +
      `Content-Length: ${Buffer.byteLength(body)}\r\n` +
      retryAfter +
      'Connection: close\r\n\r\n' +
      body,
  )
}

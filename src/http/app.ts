import { randomUUID } from 'node:crypto'
import fastifyCookie from '@fastify/cookie'
import Fastify, { type FastifyInstance, type FastifyServerOptions, LogController } from 'fastify'
import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from 'prom-client'
import { MAX_CHUNK_SIZE } from '../domain/chunk-plan.js'
import { AppError } from '../domain/errors.js'
import type { AppServices } from '../services/app-services.js'
import { limitConnections } from './connection-limits.js'
import { credentialsOf } from './credentials.js'
import { refuseCrossSiteCookieRequests } from './cross-origin.js'
import { sendError } from './error-response.js'
import { clientErrorHandler } from './framework-errors.js'
import { parseJsonBody } from './json-body.js'
import { loggableUrl } from './loggable-url.js'
import { refuseRepeatedQueryParameters } from './query-strings.js'
import { installRateLimits } from './rate-limits.js'
import { guardRequestBodies } from './request-bodies.js'
import { authRoutes, SESSION_COOKIE } from './routes/auth-routes.js'
import { fileRoutes } from './routes/file-routes.js'
import { folderRoutes } from './routes/folder-routes.js'
import { historyRoutes } from './routes/history-routes.js'
import { opsRoutes } from './routes/ops-routes.js'
import { shareRoutes } from './routes/share-routes.js'
import { syncRoutes } from './routes/sync-routes.js'
import { uploadRoutes } from './routes/upload-routes.js'
import type { SyncConnectionOptions } from './sync-connection.js'
import { attachSyncSocket } from './sync-socket.js'

export const API_PREFIX = '/api/v1'
const REQUEST_ID = /^[\w.-]{1,64}$/

export interface AppOptions {
  services: AppServices
  /** Largest JSON body accepted (chunk uploads are raw and bounded by their declared size). */
  bodyLimitBytes: number
  /** A request body that sends nothing for this long while it is read is answered 408. */
  bodyIdleTimeoutMs: number
  /** Long polls one user may hold open on this node; one more answers 429. */
  maxLongPollsPerUser: number
  sessionTtlMs: number
  loginRateLimitPerMinute: number
  /** Requests per minute per signed-in user, over all routes; 0 turns the limit off. */
  requestRateLimitPerMinute: number
  /** Requests per minute per address without a valid session (rate-limits.ts); 0 turns it off. */
  anonymousRateLimitPerMinute: number
  trustProxy: boolean
  /** Connections open at once, overall and per client address (connection-limits.ts); 0: none. */
  connections: { maxConnections: number; maxConnectionsPerAddress: number }
  logger: FastifyServerOptions['logger']
  /** Where /metrics reads from; the server adds its background jobs' figures to it. */
  metrics?: Registry
  syncSocket: SyncConnectionOptions & { maxSocketsPerUser: number }
  /** The service's public address (PUBLIC_URL), for link URLs; else the request's own host. */
  publicUrl?: string
  /** Requests per minute per address on the anonymous link routes. */
  shareRateLimitPerMinute: number
}

declare module 'fastify' {
  interface FastifyContextConfig {
    /** Routes that answer without a session (login, health checks). */
    public?: boolean
  }
}

export async function buildApp(options: AppOptions): Promise<FastifyInstance> {
  const { services } = options
  const app = Fastify({
    logger: options.logger,
    bodyLimit: options.bodyLimitBytes,
    trustProxy: options.trustProxy,
    // One line per request is logged in onResponse, with what operators need.
    logController: new LogController({ disableRequestLogging: true }),
    requestIdHeader: false,
    // What Fastify and Node would answer in shapes of their own (a bad URL encoding, an id
    // longer than maxParamLength, a request Node cannot parse) is answered in the contract's.
    frameworkErrors: (error, request, reply) => sendError(error, request, reply),
    clientErrorHandler,
    genReqId: (request) => {
      const incoming = request.headers['x-request-id']
      return typeof incoming === 'string' && REQUEST_ID.test(incoming) ? incoming : randomUUID()
    },
  })
  const metrics = options.metrics ?? new Registry()
  collectDefaultMetrics({ register: metrics })
  const requestDuration = new Histogram({
    name: 'tessera_http_request_duration_seconds',
    help: 'HTTP request duration by route and status',
    labelNames: ['method', 'route', 'status'],
    registers: [metrics],
  })
  const chunkPuts = new Counter({
    name: 'tessera_chunk_puts_total',
    help: 'Chunk PUT requests answered, by status',
    labelNames: ['status'],
    registers: [metrics],
  })

  app.decorateRequest('auth', null)
  app.setErrorHandler((error, request, reply) => sendError(error, request, reply))
  app.setNotFoundHandler((request, reply) =>
    sendError(new AppError('NOT_FOUND', 'no such route'), request, reply),
  )
  limitConnections(app.server, { ...options.connections, trustProxy: options.trustProxy })
  guardRequestBodies(app, { idleTimeoutMs: options.bodyIdleTimeoutMs, drainLimitBytes: MAX_CHUNK_SIZE })

  // JSON bodies: parsed whole (they are small: bodyLimitBytes, 8 MiB for an init), empty is none.
  app.removeContentTypeParser('application/json')
  app.addContentTypeParser('application/json', { parseAs: 'string' }, (_request, body, done) => {
    try {
      done(null, parseJsonBody(String(body)))
    } catch (error) {
      done(error as Error, undefined)
    }
  })

  app.addHook('onRequest', async (request, reply) => {
    reply.header('X-Request-Id', request.id)
  })
  app.addHook('onRequest', refuseRepeatedQueryParameters)
  app.addHook('onResponse', async (request, reply) => {
    const route = request.routeOptions.url ?? 'unmatched'
    requestDuration.observe(
      { method: request.method, route, status: reply.statusCode },
      reply.elapsedTime / 1000,
    )
    if (route.endsWith('/chunk/:index')) chunkPuts.inc({ status: reply.statusCode })
    request.log.info(
      {
        method: request.method,
        url: loggableUrl(request.url),
        status: reply.statusCode,
        ms: Math.round(reply.elapsedTime),
      },
      'request',
    )
  })

  await app.register(fastifyCookie)
  const limits = installRateLimits(app, {
    perUserPerMinute: options.requestRateLimitPerMinute,
    unauthenticatedPerAddressPerMinute: options.anonymousRateLimitPerMinute,
  })

  opsRoutes(app, { services, metrics })
  await app.register(
    async (api) => {
      api.addHook('onRequest', async (request) => {
        // Before any body is read: an unauthenticated upload is refused without taking its bytes.
        if (request.routeOptions.config.public) return
        const { token } = credentialsOf(request)
        request.auth = await limits.authenticate(request, () => services.auth.authenticate(token))
      })
      api.addHook('onRequest', refuseCrossSiteCookieRequests({ publicUrl: options.publicUrl }))
      authRoutes(api, options)
      folderRoutes(api, options)
      fileRoutes(api, options)
      uploadRoutes(api, options)
      historyRoutes(api, options)
      syncRoutes(api, options)
      shareRoutes(api, {
        services,
        shareRateLimitPerMinute: options.shareRateLimitPerMinute,
        linkBase: (request) => `${options.publicUrl ?? `${request.protocol}://${request.host}`}${API_PREFIX}`,
      })
    },
    { prefix: API_PREFIX },
  )

  const sockets = attachSyncSocket(app, services, {
    ...options.syncSocket,
    path: `${API_PREFIX}/sync/ws`,
    parseCookie: (header) => app.parseCookie(header),
    sessionCookie: SESSION_COOKIE,
    limits,
    trustProxy: options.trustProxy,
  })
  // Before the server stops listening: open sockets and long polls would keep it waiting.
  app.addHook('preClose', async () => {
    await services.hub.close()
    await sockets.close()
  })
  new Gauge({
    name: 'tessera_sync_sockets',
    help: 'Sync WebSockets open on this node',
    registers: [metrics],
    collect() {
      this.set(sockets.connections)
    },
  })
  new Gauge({
    name: 'tessera_sync_watched_users',
    help: 'Users with a sync socket or long poll on this node (each bound on the event bus)',
    registers: [metrics],
    collect() {
      this.set(services.hub.size.users)
    },
  })
  return app
}

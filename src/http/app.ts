import { randomUUID } from 'node:crypto'
import fastifyCookie from '@fastify/cookie'
import Fastify, { type FastifyInstance, type FastifyServerOptions, LogController } from 'fastify'
import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from 'prom-client'
import type { Config } from '../config.js'
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
import { installRateLimits, type RateLimits } from './rate-limits.js'
import { guardRequestBodies } from './request-bodies.js'
import { authRoutes, SESSION_COOKIE } from './routes/auth-routes.js'
import { fileRoutes } from './routes/file-routes.js'
import { folderRoutes } from './routes/folder-routes.js'
import { historyRoutes } from './routes/history-routes.js'
import { opsRoutes } from './routes/ops-routes.js'
import { shareRoutes } from './routes/share-routes.js'
import { syncRoutes } from './routes/sync-routes.js'
import { uploadRoutes } from './routes/upload-routes.js'
import { attachSyncSocket } from './sync-socket.js'

export const API_PREFIX = '/api/v1'
const REQUEST_ID = /^[\w.-]{1,64}$/

/** The configuration groups the HTTP layer reads. */
export type AppConfig = Pick<Config, 'http' | 'shares' | 'sync' | 'auth'>

export interface AppOptions {
  config: AppConfig
  services: AppServices
  logger: FastifyServerOptions['logger']
  /** Where /metrics reads from; the server adds its background jobs' figures to it. */
  metrics?: Registry
}

declare module 'fastify' {
  interface FastifyContextConfig {
    /** Routes that answer without a session (login, health checks). */
    public?: boolean
  }
}

/** The HTTP app on the services: guards, metrics, the API's routes and the sync socket. */
export async function buildApp({
  config,
  services,
  logger,
  metrics = new Registry(),
}: AppOptions): Promise<FastifyInstance> {
  const app = createFastify(config.http, logger)
  app.decorateRequest('auth', null)
  app.setErrorHandler((error, request, reply) => sendError(error, request, reply))
  app.setNotFoundHandler((request, reply) =>
    sendError(new AppError('NOT_FOUND', 'no such route'), request, reply),
  )
  limitConnections(app.server, { ...config.http, trustProxy: config.http.trustProxy })
  guardRequestBodies(app, { idleTimeoutMs: config.http.bodyIdleTimeoutMs, drainLimitBytes: MAX_CHUNK_SIZE })
  acceptJsonBodies(app)
  app.addHook('onRequest', async (request, reply) => {
    reply.header('X-Request-Id', request.id)
  })
  app.addHook('onRequest', refuseRepeatedQueryParameters)
  logAndMeasureRequests(app, metrics)

  await app.register(fastifyCookie)
  const limits = installRateLimits(app, {
    perUserPerMinute: config.http.requestRateLimitPerMinute,
    unauthenticatedPerAddressPerMinute: config.http.anonymousRateLimitPerMinute,
  })
  opsRoutes(app, { services, metrics })
  await app.register(async (api) => apiRoutes(api, { config, services, limits }), { prefix: API_PREFIX })
  attachSyncSockets(app, { config, services, limits, metrics })
  return app
}

function createFastify(http: Config['http'], logger: FastifyServerOptions['logger']): FastifyInstance {
  return Fastify({
    logger,
    bodyLimit: http.bodyLimitBytes,
    trustProxy: http.trustProxy,
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
}

/** JSON bodies: parsed whole (they are small: bodyLimitBytes, 8 MiB for an init), empty is none. */
function acceptJsonBodies(app: FastifyInstance): void {
  app.removeContentTypeParser('application/json')
  app.addContentTypeParser('application/json', { parseAs: 'string' }, (_request, body, done) => {
    try {
      done(null, parseJsonBody(String(body)))
    } catch (error) {
      done(error as Error, undefined)
    }
  })
}

/** One log line and one latency observation per request, with what operators need. */
function logAndMeasureRequests(app: FastifyInstance, metrics: Registry): void {
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
  app.addHook('onResponse', async (request, reply) => {
    const route = request.routeOptions.url ?? 'unmatched'
    requestDuration.observe(
      { method: request.method, route, status: reply.statusCode },
      reply.elapsedTime / 1000,
    )
    if (route.endsWith('/chunk/:index')) chunkPuts.inc({ status: reply.statusCode })
    const line = { method: request.method, url: loggableUrl(request.url), status: reply.statusCode }
    request.log.info({ ...line, ms: Math.round(reply.elapsedTime) }, 'request')
  })
}

interface ApiParts {
  config: AppConfig
  services: AppServices
  limits: RateLimits
}

/** The routes under /api/v1: signed in (unless a route says it is public) and same-site. */
function apiRoutes(api: FastifyInstance, { config, services, limits }: ApiParts): void {
  api.addHook('onRequest', async (request) => {
    // Before any body is read: an unauthenticated upload is refused without taking its bytes.
    if (request.routeOptions.config.public) return
    const { token } = credentialsOf(request)
    request.auth = await limits.authenticate(request, () => services.auth.authenticate(token))
  })
  api.addHook('onRequest', refuseCrossSiteCookieRequests({ publicUrl: config.http.publicUrl }))
  authRoutes(api, {
    services,
    sessionTtlMs: config.auth.sessionTtlMs,
    loginRateLimitPerMinute: config.auth.loginRateLimitPerMinute,
  })
  folderRoutes(api, { services })
  fileRoutes(api, { services })
  uploadRoutes(api, { services })
  historyRoutes(api, { services })
  syncRoutes(api, { services, maxLongPollsPerUser: config.sync.maxLongPollsPerUser })
  shareRoutes(api, {
    services,
    shareRateLimitPerMinute: config.shares.rateLimitPerMinute,
    linkBase: (request) => `${config.http.publicUrl ?? `${request.protocol}://${request.host}`}${API_PREFIX}`,
  })
}

/** The sync WebSocket, closed before the server stops listening, and its gauges. */
function attachSyncSockets(
  app: FastifyInstance,
  { config, services, limits, metrics }: ApiParts & { metrics: Registry },
): void {
  const sockets = attachSyncSocket(app, services, {
    ...config.sync,
    path: `${API_PREFIX}/sync/ws`,
    parseCookie: (header) => app.parseCookie(header),
    sessionCookie: SESSION_COOKIE,
    limits,
    trustProxy: config.http.trustProxy,
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
}

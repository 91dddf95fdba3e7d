import { randomUUID } from 'node:crypto'
import os from 'node:os'
import type { FastifyInstance, FastifyServerOptions } from 'fastify'
import { Registry } from 'prom-client'
import { AmqpEventBus } from './adapters/amqp/amqp-event-bus.js'
import { DiskBlobStore } from './adapters/disk/disk-blob-store.js'
import { LocalEventBus } from './adapters/local-bus/local-event-bus.js'
import { openPostgresMetadataStore } from './adapters/postgres/postgres-metadata-store.js'
import { openSqliteMetadataStore } from './adapters/sqlite/sqlite-metadata-store.js'
import type { Config } from './config.js'
import { type Clock, systemClock } from './domain/clock.js'
import { buildApp } from './http/app.js'
import type { BlobStore } from './ports/blob-store.js'
import type { EventBus } from './ports/event-bus.js'
import type { MetadataStore } from './ports/metadata-store.js'
import type { AppServices } from './services/app-services.js'
import type { DamageEvent } from './services/chunk-integrity.js'
import { buildServices, type ServiceOptions } from './services/index.js'
import { integrityMetrics } from './services/integrity-metrics.js'
import { Maintenance } from './services/maintenance.js'
import { maintenanceMetrics } from './services/maintenance-metrics.js'

export interface RunningServer {
  app: FastifyInstance
  services: AppServices
  /** The address it listens on, e.g. http://127.0.0.1:8080. */
  url: string
  close(): Promise<void>
}

/** How long in-flight requests get to finish on shutdown before their connections are cut. */
const SHUTDOWN_GRACE_MS = 10_000

/**
 * Stops accepting, lets requests in flight finish, then closes. A keep-alive connection
 * that was busy when closing began becomes idle only afterwards, and Node would keep it
 * (and the shutdown) waiting for its keep-alive timeout: such connections are closed as
 * soon as they turn idle, and every connection is cut after the grace period.
 */
async function closeGracefully(app: FastifyInstance): Promise<void> {
  const closing = app.close()
  const idleSweep = setInterval(() => app.server.closeIdleConnections(), 50)
  const hardStop = setTimeout(() => app.server.closeAllConnections(), SHUTDOWN_GRACE_MS)
  try {
    await closing
  } finally {
    clearInterval(idleSweep)
    clearTimeout(hardStop)
  }
}

/** The only place that picks adapters: from the configuration, never from code edits. */
export async function openStores(config: Config): Promise<{ meta: MetadataStore; blobs: BlobStore }> {
  const meta =
    config.db.kind === 'postgres'
      ? await openPostgresMetadataStore({
          url: config.db.url,
          connectTimeoutMs: config.db.connectTimeoutMs,
          queryTimeoutMs: config.db.queryTimeoutMs,
        })
      : await openSqliteMetadataStore({ file: config.db.file })
  const blobs = new DiskBlobStore({ root: config.blobs.root })
  await blobs.init()
  return { meta, blobs }
}

/**
 * The event bus as configured. A RabbitMQ bus that cannot connect yet does not stop the server
 * from starting: it keeps trying, and /readyz says so meanwhile.
 */
export async function openBus(
  config: Config,
  onError: (error: unknown, context: string) => void,
): Promise<EventBus> {
  // Names this node's queue on the broker: readable in the management UI, unique per process.
  const nodeId = `${os.hostname()}-${process.pid}-${randomUUID().slice(0, 8)}`
  if (config.bus.kind === 'local') return new LocalEventBus({ nodeId, onError })
  const bus = new AmqpEventBus({ url: config.bus.url, nodeId, onError })
  await bus.start()
  return bus
}

/** The services as configured: the server and the maintenance commands share this. */
export function servicesFor(
  config: Config,
  meta: MetadataStore,
  blobs: BlobStore,
  clock: Clock,
  extras: Pick<ServiceOptions, 'bus' | 'onBackgroundError' | 'onChunkDamage'> = {},
): AppServices {
  return buildServices(meta, blobs, clock, {
    ...extras,
    journal: config.sync,
    shareLinks: {
      attemptLimit: config.shares.passwordAttempts,
      attemptsPerAddress: config.shares.passwordAttemptsPerAddress,
      attemptWindowMs: config.shares.passwordWindowMs,
    },
    sessionTtlMs: config.auth.sessionTtlMs,
    sessionCacheMs: config.auth.sessionCacheMs,
    defaultQuotaBytes: config.auth.defaultQuotaBytes,
    uploadSessionTtlMs: config.uploads.sessionTtlMs,
    uploadMaxOpenSessions: config.uploads.maxOpenSessions,
    uploadMinChunkBytes: config.uploads.minChunkBytes,
    passwordHashing: config.auth.passwordHashing,
    retention: config.versions,
    trashRetentionMs: config.trash.retentionMs,
    gcGraceMs: config.gc.graceMs,
  })
}

export async function startServer(
  config: Config,
  options: { logger?: FastifyServerOptions['logger']; clock?: Clock } = {},
): Promise<RunningServer> {
  const { meta, blobs } = await openStores(config)
  const clock = options.clock ?? systemClock
  // The logger exists only with the app; background errors before that are not expected.
  let log: FastifyInstance['log'] | undefined
  const onBackgroundError = (error: unknown, context: string) => log?.error({ err: error }, context)
  const bus = await openBus(config, onBackgroundError)
  const metrics = new Registry()
  const countDamage = integrityMetrics(metrics, () => meta.audit.countDamaged())
  const onChunkDamage = (event: DamageEvent) => {
    countDamage(event)
    log?.error({ chunk: event }, 'a stored chunk copy is damaged')
  }
  const services = servicesFor(config, meta, blobs, clock, { bus, onBackgroundError, onChunkDamage })
  const app = await buildApp({
    syncSocket: config.sync,
    publicUrl: config.http.publicUrl,
    shareRateLimitPerMinute: config.shares.rateLimitPerMinute,
    services,
    metrics,
    bodyLimitBytes: config.http.bodyLimitBytes,
    bodyIdleTimeoutMs: config.http.bodyIdleTimeoutMs,
    maxLongPollsPerUser: config.sync.maxLongPollsPerUser,
    sessionTtlMs: config.auth.sessionTtlMs,
    loginRateLimitPerMinute: config.auth.loginRateLimitPerMinute,
    requestRateLimitPerMinute: config.http.requestRateLimitPerMinute,
    anonymousRateLimitPerMinute: config.http.anonymousRateLimitPerMinute,
    trustProxy: config.http.trustProxy,
    connections: {
      maxConnections: config.http.maxConnections,
      maxConnectionsPerAddress: config.http.maxConnectionsPerAddress,
    },
    logger: options.logger ?? { level: config.logLevel },
  })
  log = app.log

  // Expired upload and login sessions are swept in the background; a failed sweep is logged
  // and tried again next time, never fatal.
  const sweep = async () => {
    try {
      const uploads = await services.uploads.sweepExpired()
      const sessions = await services.auth.sweepExpiredSessions()
      if (uploads + sessions > 0) app.log.info({ uploads, sessions }, 'swept expired sessions')
    } catch (error) {
      app.log.error({ err: error }, 'sweeping expired sessions failed')
    }
  }
  const sweeper = setInterval(sweep, config.uploads.sweepIntervalMs)
  sweeper.unref()

  // Trash emptying, history thinning, garbage collection and temp file reaping, beside normal
  // traffic, by one node at a time (the upkeep lease, held under this process's name).
  const maintenance = new Maintenance(services, clock, {
    holder: `${os.hostname()}-${process.pid}-${randomUUID().slice(0, 8)}`,
    orphanScanIntervalMs: config.gc.orphanScanIntervalMs,
    gcGraceMs: config.gc.graceMs,
  })
  const recordUpkeep = maintenanceMetrics(metrics)
  const upkeep = async () => {
    try {
      const report = await maintenance.run()
      recordUpkeep(report)
      if (!report.ran) {
        app.log.info('storage upkeep skipped: another node holds the upkeep lease')
        return
      }
      app.log.info(
        { ...report, gc: { ...report.gc, errors: report.gc.errors.length } },
        'storage upkeep done',
      )
      for (const { hash, error } of report.gc.errors)
        app.log.error({ hash, error }, 'gc could not delete a chunk')
    } catch (error) {
      app.log.error({ err: error }, 'storage upkeep failed')
    }
  }
  const upkeepTimer = config.gc.intervalMs > 0 ? setInterval(upkeep, config.gc.intervalMs) : undefined
  upkeepTimer?.unref()

  // Events are hints: one lost with the node that was to publish it (it died right after its
  // commit) is made up for by every watcher reading its journal now and then.
  const resyncTimer = setInterval(() => services.hub.resync(), config.sync.resyncIntervalMs)
  resyncTimer.unref()

  const url = await app.listen({ port: config.http.port, host: config.http.host })
  return {
    app,
    services,
    url,
    async close() {
      clearInterval(sweeper)
      clearInterval(upkeepTimer)
      clearInterval(resyncTimer)
      await closeGracefully(app)
      await bus.close()
      await services.hashers.close()
      await meta.close()
    },
  }
}

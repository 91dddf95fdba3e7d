import type { FastifyInstance, FastifyServerOptions } from 'fastify'
import { Registry } from 'prom-client'
import { startBackgroundJobs } from './background-jobs.js'
import { buildServices, openBus, openStores } from './composition.js'
import type { Config } from './config.js'
import { type Clock, systemClock } from './domain/clock.js'
import { buildApp } from './http/app.js'
import type { AppServices } from './services/app-services.js'
import type { DamageEvent } from './services/chunk-integrity.js'
import { integrityMetrics } from './services/integrity-metrics.js'

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
 * A server as configured: stores, bus and services (composition.ts), the HTTP app on them,
 * and the background jobs, listening. `close` stops them in the reverse order.
 */
export async function startServer(
  config: Config,
  options: { logger?: FastifyServerOptions['logger']; clock?: Clock } = {},
): Promise<RunningServer> {
  const clock = options.clock ?? systemClock
  const stores = await openStores(config)
  // The logger exists only with the app; background errors before that are not expected.
  let log: FastifyInstance['log'] | undefined
  const onBackgroundError = (error: unknown, context: string) => log?.error({ err: error }, context)
  const bus = await openBus(config.bus, onBackgroundError)
  const metrics = new Registry()
  const countDamage = integrityMetrics(metrics, () => stores.meta.audit.countDamaged())
  const onChunkDamage = (event: DamageEvent) => {
    countDamage(event)
    log?.error({ chunk: event }, 'a stored chunk copy is damaged')
  }
  const services = buildServices({ ...stores, bus }, clock, config, { onBackgroundError, onChunkDamage })
  const app = await buildApp({
    config,
    services,
    metrics,
    logger: options.logger ?? { level: config.logLevel },
  })
  log = app.log
  const stopJobs = startBackgroundJobs(services, config, { clock, metrics, log: app.log })
  const url = await app.listen({ port: config.http.port, host: config.http.host })
  return {
    app,
    services,
    url,
    async close() {
      stopJobs()
      await closeGracefully(app)
      await bus.close()
      await services.hashers.close()
      await stores.meta.close()
    },
  }
}

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

import type { FastifyBaseLogger } from 'fastify'
import type { Registry } from 'prom-client'
import { processName } from './composition.js'
import type { Config } from './config.js'
import type { Clock } from './domain/clock.js'
import type { AppServices } from './services/app-services.js'
import { Maintenance } from './services/maintenance.js'
import { maintenanceMetrics } from './services/maintenance-metrics.js'

/**
 * What a server does beside answering requests, on timers that never keep the process alive:
 * sweeping expired sessions, storage upkeep, and reading every watcher's journal now and then.
 * A job that fails is logged and tried again next time, never fatal. Answers a stop function.
 */
export function startBackgroundJobs(
  services: AppServices,
  config: Pick<Config, 'uploads' | 'gc' | 'sync'>,
  { clock, metrics, log }: { clock: Clock; metrics: Registry; log: FastifyBaseLogger },
): () => void {
  const timers = [
    every(config.uploads.sweepIntervalMs, () => sweepExpiredSessions(services, log)),
    config.gc.intervalMs > 0
      ? every(config.gc.intervalMs, upkeepJob(services, config.gc, clock, metrics, log))
      : null,
    // Events are hints: one lost with the node that was to publish it (it died right after its
    // commit) is made up for by every watcher reading its journal now and then.
    every(config.sync.resyncIntervalMs, () => services.hub.resync()),
  ]
  return () => {
    for (const timer of timers) if (timer) clearInterval(timer)
  }
}

function every(intervalMs: number, job: () => unknown): NodeJS.Timeout {
  const timer = setInterval(job, intervalMs)
  timer.unref()
  return timer
}

/** Expired upload sessions (their quota released) and login sessions. */
async function sweepExpiredSessions(services: AppServices, log: FastifyBaseLogger): Promise<void> {
  try {
    const uploads = await services.uploads.sweepExpired()
    const sessions = await services.auth.sweepExpiredSessions()
    if (uploads + sessions > 0) log.info({ uploads, sessions }, 'swept expired sessions')
  } catch (error) {
    log.error({ err: error }, 'sweeping expired sessions failed')
  }
}

/**
 * Trash emptying, history thinning, garbage collection and temp file reaping, beside normal
 * traffic, by one node at a time (the upkeep lease, held under this process's name).
 */
function upkeepJob(
  services: AppServices,
  gc: Config['gc'],
  clock: Clock,
  metrics: Registry,
  log: FastifyBaseLogger,
): () => Promise<void> {
  const maintenance = new Maintenance(services, clock, {
    holder: processName(),
    orphanScanIntervalMs: gc.orphanScanIntervalMs,
    gcGraceMs: gc.graceMs,
  })
  const recordUpkeep = maintenanceMetrics(metrics)
  return async () => {
    try {
      const report = await maintenance.run()
      recordUpkeep(report)
      if (!report.ran) {
        log.info('storage upkeep skipped: another node holds the upkeep lease')
        return
      }
      log.info({ ...report, gc: { ...report.gc, errors: report.gc.errors.length } }, 'storage upkeep done')
      for (const { hash, error } of report.gc.errors)
        log.error({ hash, error }, 'gc could not delete a chunk')
    } catch (error) {
      log.error({ err: error }, 'storage upkeep failed')
    }
  }
}

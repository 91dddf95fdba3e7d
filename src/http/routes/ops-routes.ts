import type { FastifyInstance } from 'fastify'
import { Gauge, type Registry } from 'prom-client'
import type { AppServices } from '../../services/app-services.js'
import { checkReadiness } from '../../services/readiness.js'

/**
 * /healthz: the process answers. /readyz: every store and the event bus answer too. /metrics:
 * Prometheus. /readyz is anonymous, so it names the failing check and nothing else: a probe's
 * message can hold internal hosts and ports. The message goes to the log, and each check's
 * state to the `tessera_ready{check}` gauge.
 */
export function opsRoutes(
  app: FastifyInstance,
  { services, metrics }: { services: AppServices; metrics: Registry },
) {
  const runChecks = () => checkReadiness(services)

  new Gauge({
    name: 'tessera_ready',
    help: 'Whether each readiness check (metadata, blobs, bus) passes: 1, or 0 (its error is logged)',
    labelNames: ['check'],
    registers: [metrics],
    async collect() {
      for (const [check, error] of Object.entries(await runChecks())) {
        this.set({ check }, error ? 0 : 1)
        if (error) app.log.warn({ check, err: error }, 'readiness check failed')
      }
    },
  })

  app.get('/healthz', { config: { public: true } }, async () => ({ status: 'ok' }))

  app.get('/readyz', { config: { public: true } }, async (request, reply) => {
    const results = await runChecks()
    const answer: Record<string, 'ok' | 'error'> = {}
    for (const [check, error] of Object.entries(results)) {
      answer[check] = error ? 'error' : 'ok'
      if (error) request.log.warn({ check, err: error }, 'readiness check failed')
    }
    const ready = Object.values(answer).every((state) => state === 'ok')
    return reply.code(ready ? 200 : 503).send({ status: ready ? 'ready' : 'not ready', checks: answer })
  })

  app.get('/metrics', { config: { public: true } }, async (_request, reply) =>
    reply.type(metrics.contentType).send(await metrics.metrics()),
  )
}

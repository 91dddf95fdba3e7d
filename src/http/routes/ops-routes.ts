import type { FastifyInstance } from 'fastify'
import type { Registry } from 'prom-client'
import type { AppServices } from '../context.js'

const READY_TIMEOUT_MS = 2_000

/** /healthz: the process answers. /readyz: every store and the event bus answer too. /metrics: Prometheus. */
export function opsRoutes(
  app: FastifyInstance,
  { services, metrics }: { services: AppServices; metrics: Registry },
) {
  app.get('/healthz', { config: { public: true } }, async () => ({ status: 'ok' }))

  app.get('/readyz', { config: { public: true } }, async (_request, reply) => {
    const checks = {
      metadata: await probe(() => services.meta.ping()),
      blobs: await probe(() => services.blobs.ping()),
      // Without the bus this node still serves and its clients still catch up from the journal,
      // but changes made on other nodes reach its sockets late: not ready, so operators see it.
      bus: await probe(() => services.bus.ping()),
    }
    const ready = Object.values(checks).every((check) => check === 'ok')
    return reply.code(ready ? 200 : 503).send({ status: ready ? 'ready' : 'not ready', checks })
  })

  app.get('/metrics', { config: { public: true } }, async (_request, reply) =>
    reply.type(metrics.contentType).send(await metrics.metrics()),
  )
}

async function probe(check: () => Promise<void>): Promise<string> {
  let timer: NodeJS.Timeout | undefined
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no answer within ${READY_TIMEOUT_MS} ms`)), READY_TIMEOUT_MS)
  })
  try {
    await Promise.race([check(), timeout])
    return 'ok'
  } catch (error) {
    return `error: ${(error as Error).message}`
  } finally {
    clearTimeout(timer)
  }
}

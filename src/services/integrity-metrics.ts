import { Counter, Gauge, type Registry } from 'prom-client'
import type { DamageEvent } from './chunk-integrity.js'

/** How long a scrape waits for the count of damaged chunks (a query) before it goes without. */
const COUNT_DEADLINE_MS = 2_000

/**
 * What operators alert on when stored bytes go bad (`/metrics`): every copy found wrong or gone,
 * by where it was found, and how many chunks stand damaged now (waiting for an upload to
 * repair them). Answers the listener for ChunkIntegrity.
 */
export function integrityMetrics(
  registry: Registry,
  countDamaged: () => Promise<number>,
): (event: DamageEvent) => void {
  const detected = new Counter({
    name: 'tessera_chunk_damage_detected_total',
    help: 'Stored chunk copies found wrong or missing, by where they were found (download, scrub, upload)',
    labelNames: ['source'],
    registers: [registry],
  })
  new Gauge({
    name: 'tessera_chunks_damaged',
    help: 'Chunks marked damaged and not yet repaired by an upload of their bytes',
    registers: [registry],
    // A scrape must answer while the database is down (that is when tessera_ready matters):
    // the count gets a deadline, and without an answer the gauge keeps its last value.
    async collect() {
      const count = await withinDeadline(countDamaged(), COUNT_DEADLINE_MS)
      if (count !== undefined) this.set(count)
    },
  })
  return (event) => detected.inc({ source: event.source })
}

/** `work`'s value, or undefined when it fails or takes longer than `ms`. */
async function withinDeadline<T>(work: Promise<T>, ms: number): Promise<T | undefined> {
  let timer: NodeJS.Timeout | undefined
  const late = new Promise<undefined>((resolve) => {
    timer = setTimeout(() => resolve(undefined), ms)
  })
  try {
    return await Promise.race([work.catch(() => undefined), late])
  } finally {
    clearTimeout(timer)
  }
}

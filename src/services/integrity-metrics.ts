import { Counter, Gauge, type Registry } from 'prom-client'
import type { DamageEvent } from './chunk-integrity.js'

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
    async collect() {
      this.set(await countDamaged())
    },
  })
  return (event) => detected.inc({ source: event.source })
}

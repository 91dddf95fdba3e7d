import { Counter, Gauge, type Registry } from 'prom-client'
import type { MaintenanceReport } from './maintenance.js'

/** What operators graph and alert on from the storage upkeep (`/metrics`). */
export function maintenanceMetrics(registry: Registry): (report: MaintenanceReport) => void {
  const sweptChunks = new Counter({
    name: 'tessera_gc_swept_chunks_total',
    help: 'Unreferenced chunks deleted by the garbage collector',
    registers: [registry],
  })
  const sweptBytes = new Counter({
    name: 'tessera_gc_swept_bytes_total',
    help: 'Bytes of the chunks deleted by the garbage collector',
    registers: [registry],
  })
  const gcErrors = new Counter({
    name: 'tessera_gc_delete_errors_total',
    help: 'Chunks whose bytes could not be deleted (left claimed; retried next run)',
    registers: [registry],
  })
  const orphans = new Counter({
    name: 'tessera_gc_orphans_total',
    help: 'Stored bytes without a row found by the orphan walk',
    registers: [registry],
  })
  const trashPurged = new Counter({
    name: 'tessera_trash_expired_purged_total',
    help: 'Trash items purged because they aged out',
    registers: [registry],
  })
  const versionsPruned = new Counter({
    name: 'tessera_versions_pruned_total',
    help: 'Versions dropped by the retention policy in the periodic sweep',
    registers: [registry],
  })
  const lastRun = new Gauge({
    name: 'tessera_upkeep_last_success_timestamp_seconds',
    help: 'When the storage upkeep last completed',
    registers: [registry],
  })
  return (report) => {
    sweptChunks.inc(report.gc.swept)
    sweptBytes.inc(report.gc.sweptBytes)
    gcErrors.inc(report.gc.errors.length)
    orphans.inc(report.gc.orphans)
    trashPurged.inc(report.trashPurged)
    versionsPruned.inc(report.versionsPruned)
    lastRun.setToCurrentTime()
  }
}

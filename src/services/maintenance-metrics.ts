import { Counter, Gauge, type Registry } from 'prom-client'
import type { MaintenanceReport } from './maintenance.js'

/** What operators graph and alert on from the storage upkeep (`/metrics`). */
export function maintenanceMetrics(registry: Registry): (report: MaintenanceReport) => void {
  const counter = (name: string, help: string) => new Counter({ name, help, registers: [registry] })
  const sweptChunks = counter(
    'tessera_gc_swept_chunks_total',
    'Unreferenced chunks deleted by the garbage collector',
  )
  const sweptBytes = counter(
    'tessera_gc_swept_bytes_total',
    'Bytes of the chunks deleted by the garbage collector',
  )
  const gcErrors = counter(
    'tessera_gc_delete_errors_total',
    'Chunks whose bytes could not be deleted (left claimed; retried next run)',
  )
  const orphans = counter('tessera_gc_orphans_total', 'Stored bytes without a row found by the orphan walk')
  const trashPurged = counter(
    'tessera_trash_expired_purged_total',
    'Trash items purged because they aged out',
  )
  const versionsPruned = counter(
    'tessera_versions_pruned_total',
    'Versions dropped by the retention policy in the periodic sweep',
  )
  const historyVisited = counter(
    'tessera_history_files_visited_total',
    'Files whose history was due and was looked at by the periodic sweep',
  )
  const abandonedWrites = counter(
    'tessera_upkeep_abandoned_writes_removed_total',
    'Temp files of chunk writes that never finished (a crash mid-upload), removed by upkeep',
  )
  const skipped = counter(
    'tessera_upkeep_skipped_total',
    'Upkeep runs this node skipped because another node held the upkeep lease',
  )
  const journalCompacted = counter(
    'tessera_journal_compacted_entries_total',
    'Change journal entries dropped past retention',
  )
  const lastRun = new Gauge({
    name: 'tessera_upkeep_last_success_timestamp_seconds',
    help: 'When this node last completed the storage upkeep (not set by runs skipped for the lease)',
    registers: [registry],
  })
  return (report) => {
    if (!report.ran) {
      // Not a success of this node's: alert on the newest success across nodes instead.
      skipped.inc()
      return
    }
    sweptChunks.inc(report.gc.swept)
    sweptBytes.inc(report.gc.sweptBytes)
    gcErrors.inc(report.gc.errors.length)
    orphans.inc(report.gc.orphans)
    trashPurged.inc(report.trashPurged)
    versionsPruned.inc(report.history.pruned)
    historyVisited.inc(report.history.visited)
    abandonedWrites.inc(report.abandonedWrites)
    journalCompacted.inc(report.journalCompacted)
    lastRun.setToCurrentTime()
  }
}

import { Counter, Gauge, type Registry } from 'prom-client'
import type { MaintenanceReport, UpkeepReport } from './maintenance.js'

/** Each counter of a completed upkeep run: its name, its help, and what of the report it adds. */
const UPKEEP_COUNTERS: ReadonlyArray<[name: string, help: string, count: (report: UpkeepReport) => number]> =
  [
    [
      'tessera_gc_swept_chunks_total',
      'Unreferenced chunks deleted by the garbage collector',
      (r) => r.gc.swept,
    ],
    [
      'tessera_gc_swept_bytes_total',
      'Bytes of the chunks deleted by the garbage collector',
      (r) => r.gc.sweptBytes,
    ],
    [
      'tessera_gc_delete_errors_total',
      'Chunks whose bytes could not be deleted (left claimed; retried next run)',
      (r) => r.gc.errors.length,
    ],
    ['tessera_gc_orphans_total', 'Stored bytes without a row found by the orphan walk', (r) => r.gc.orphans],
    ['tessera_trash_expired_purged_total', 'Trash items purged because they aged out', (r) => r.trashPurged],
    [
      'tessera_versions_pruned_total',
      'Versions dropped by the retention policy in the periodic sweep',
      (r) => r.history.pruned,
    ],
    [
      'tessera_history_files_visited_total',
      'Files whose history was due and was looked at by the periodic sweep',
      (r) => r.history.visited,
    ],
    [
      'tessera_upkeep_abandoned_writes_removed_total',
      'Temp files of chunk writes that never finished (a crash mid-upload), removed by upkeep',
      (r) => r.abandonedWrites,
    ],
    [
      'tessera_journal_compacted_entries_total',
      'Change journal entries dropped past retention',
      (r) => r.journalCompacted,
    ],
  ]

/** What operators graph and alert on from the storage upkeep (`/metrics`). */
export function maintenanceMetrics(registry: Registry): (report: MaintenanceReport) => void {
  const counters = UPKEEP_COUNTERS.map(([name, help, count]) => ({
    counter: new Counter({ name, help, registers: [registry] }),
    count,
  }))
  const skipped = new Counter({
    name: 'tessera_upkeep_skipped_total',
    help: 'Upkeep runs this node skipped because another node held the upkeep lease',
    registers: [registry],
  })
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
    for (const { counter, count } of counters) counter.inc(count(report))
    lastRun.setToCurrentTime()
  }
}

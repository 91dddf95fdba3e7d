import type { Clock } from '../domain/clock.js'
import type { Millis } from '../domain/model.js'
import type { GarbageCollector, GcReport } from './garbage-collector.js'
import type { SyncService } from './sync-service.js'
import type { TrashService } from './trash-service.js'
import type { VersionHistory } from './version-history.js'

export interface MaintenanceReport {
  trashPurged: number
  versionsPruned: number
  /** Journal entries dropped past retention. */
  journalCompacted: number
  gc: GcReport
}

/**
 * The periodic storage upkeep every API node runs: empty the trash of what aged out, thin
 * version history, then collect the garbage both left; and compact the change journal. Safe on several nodes at once (each
 * step takes its own locks and claims); a run still going when the next is due is not doubled.
 */
export class Maintenance {
  #running: Promise<MaintenanceReport> | undefined
  #lastOrphanScan: Millis

  constructor(
    private readonly parts: {
      trash: TrashService
      history: VersionHistory
      gc: GarbageCollector
      sync: SyncService
    },
    private readonly clock: Clock,
    private readonly orphanScanIntervalMs: Millis,
  ) {
    // The first orphan walk waits one interval: a node that restarts often must not walk
    // the whole store at every start.
    this.#lastOrphanScan = clock()
  }

  run(): Promise<MaintenanceReport> {
    this.#running ??= this.#run().finally(() => {
      this.#running = undefined
    })
    return this.#running
  }

  async #run(): Promise<MaintenanceReport> {
    const trashPurged = await this.parts.trash.emptyExpired()
    const versionsPruned = await this.parts.history.sweep(this.clock())
    const orphans = this.clock() - this.#lastOrphanScan >= this.orphanScanIntervalMs
    const gc = await this.parts.gc.run({ orphans })
    if (orphans) this.#lastOrphanScan = this.clock()
    const journalCompacted = await this.parts.sync.compact()
    return { trashPurged, versionsPruned, journalCompacted, gc }
  }
}

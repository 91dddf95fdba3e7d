import type { Clock } from '../domain/clock.js'
import type { Millis } from '../domain/model.js'
import type { BlobStore } from '../ports/blob-store.js'
import type { MetadataStore } from '../ports/metadata-store.js'
import type { GarbageCollector, GcReport } from './garbage-collector.js'
import type { SyncService } from './sync-service.js'
import type { TrashService } from './trash-service.js'
import type { HistorySweepReport, VersionHistory } from './version-history.js'

/** A run that did the upkeep. */
export interface UpkeepReport {
  ran: true
  trashPurged: number
  history: HistorySweepReport
  gc: GcReport
  /** Temp files of puts that never finished (a crash mid-upload), removed. */
  abandonedWrites: number
  /** Journal entries dropped past retention. */
  journalCompacted: number
  /** The lease could not be renewed between steps (it lasted less than a step): another node may have run upkeep alongside. */
  leaseLost: boolean
}

/** A run that found another node doing the upkeep, and did nothing. */
export interface UpkeepSkipped {
  ran: false
}

export type MaintenanceReport = UpkeepReport | UpkeepSkipped

export interface MaintenanceOptions {
  /** Names this process as the holder of the upkeep lease: unique per process. */
  holder: string
  /** How often the collector also walks the blob store for orphans. */
  orphanScanIntervalMs: Millis
  /** The collector's grace period, below which a temp file is never taken for abandoned. */
  gcGraceMs: Millis
  /** How long the lease lasts unless renewed; it is renewed between steps (and history batches). */
  leaseTtlMs?: Millis
}

/** The lease's name: one upkeep at a time across every API node. */
export const UPKEEP_LEASE = 'upkeep'
/**
 * Longer than any one step takes on a healthy store, short enough that a node that died
 * holding the lease delays the others' upkeep by little (upkeep runs hourly by default).
 */
const DEFAULT_LEASE_TTL_MS = 15 * 60_000
/**
 * A put still writing touches its temp file all along, so a temp file untouched for this long
 * belongs to a put that died; unless the grace period is longer (then an operator expects
 * slower uploads).
 */
const ABANDONED_WRITE_AGE_MS = 60 * 60_000

/**
 * The periodic storage upkeep: empty the trash of what aged out, thin version history, collect
 * the garbage both left, remove temp files of puts that never finished, and compact the change
 * journal.
 *
 * One node at a time: a run first takes the `upkeep` lease and skips when another node holds
 * it. The lease only saves work (N nodes repeating the same sweeps); correctness never depends
 * on it. Every step takes its own locks and claims (the collector's claims are safe with
 * several collectors at once), so two runs that overlap, because a lease expired under a slow
 * step or `tessera gc` runs beside the server (the CLI takes no lease), are still safe. A run
 * still going in this process when the next is due is not doubled.
 */
export class Maintenance {
  #running: Promise<MaintenanceReport> | undefined
  #lastOrphanScan: Millis
  readonly #leaseTtlMs: Millis

  constructor(
    private readonly parts: {
      trash: TrashService
      history: VersionHistory
      gc: GarbageCollector
      sync: SyncService
      meta: Pick<MetadataStore, 'leases'>
      blobs: Pick<BlobStore, 'removeAbandonedWrites'>
    },
    private readonly clock: Clock,
    private readonly options: MaintenanceOptions,
  ) {
    this.#leaseTtlMs = options.leaseTtlMs ?? DEFAULT_LEASE_TTL_MS
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
    if (!(await this.#holdLease())) return { ran: false }
    try {
      let leaseLost = false
      const renew = async () => {
        if (!(await this.#holdLease())) leaseLost = true
      }
      const step = async <T>(work: () => Promise<T>): Promise<T> => {
        const result = await work()
        await renew()
        return result
      }
      const trashPurged = await step(() => this.parts.trash.emptyExpired())
      const history = await step(() => this.parts.history.sweep(this.clock(), { betweenBatches: renew }))
      const gc = await step(() => this.#collect())
      const abandonedWrites = await step(() => this.#removeAbandonedWrites())
      const journalCompacted = await this.parts.sync.compact()
      return { ran: true, trashPurged, history, gc, abandonedWrites, journalCompacted, leaseLost }
    } finally {
      // A release that fails (the database went away) must not hide the run's own outcome:
      // the lease then simply expires.
      await this.parts.meta.leases.release(UPKEEP_LEASE, this.options.holder).catch(() => {})
    }
  }

  /** Takes the lease, or renews it when this process holds it; false when another node does. */
  #holdLease(): Promise<boolean> {
    return this.parts.meta.leases.acquire(UPKEEP_LEASE, this.options.holder, this.clock(), this.#leaseTtlMs)
  }

  async #collect(): Promise<GcReport> {
    const orphans = this.clock() - this.#lastOrphanScan >= this.options.orphanScanIntervalMs
    const gc = await this.parts.gc.run({ orphans })
    if (orphans) this.#lastOrphanScan = this.clock()
    return gc
  }

  #removeAbandonedWrites(): Promise<number> {
    const age = Math.max(ABANDONED_WRITE_AGE_MS, this.options.gcGraceMs)
    return this.parts.blobs.removeAbandonedWrites(this.clock() - age)
  }
}

import { type BlobKey, blobName } from '../domain/blob-key.js'
import type { Clock } from '../domain/clock.js'
import type { ChunkHash } from '../domain/hashes.js'
import type { ChunkRecord, Millis } from '../domain/model.js'
import type { BlobStore, StoredBlob } from '../ports/blob-store.js'
import type { MetadataStore } from '../ports/metadata-store.js'
import { crashPoint } from '../support/crash-points.js'
import { pausePoint } from '../support/pause-points.js'

export interface GarbageCollectorOptions {
  /**
   * How long a chunk must stay unreferenced after it was marked before it is deleted. Covers
   * anything that learnt of the chunk before it became garbage and is about to use it. A chunk no
   * version ever named is marked collectable at once when the session that stored it ends
   * (SqlUploadRepository.delete): only sessions can know of it, and the claim sees those.
   */
  graceMs: Millis
  /** Chunks claimed and deleted per transaction. */
  batchSize?: number
  /** Blob deletions in flight at once. */
  concurrency?: number
}

export interface GcRunOptions {
  /** Count what a run would do, and change nothing. */
  dryRun?: boolean
  /** Also walk the blob store for bytes without a row (left by a crash mid-upload). */
  orphans?: boolean
}

export interface GcReport {
  dryRun: boolean
  /** Expired upload sessions removed first (they no longer protect their chunks). */
  expiredUploads: number
  /** Claims of an earlier run that stopped midway, finished by this one. */
  resumed: number
  /**
   * Chunks deleted, claimed by this run or taken over from a stopped one (in a dry run: that
   * would be). A chunk two collectors both worked on counts once, for the one that removed its row.
   */
  swept: number
  sweptBytes: number
  /** Unreferenced chunks newly marked; swept by a run at least one grace period later. */
  marked: number
  /** Stored bytes with no row, older than the grace period (in a dry run: found). */
  orphans: number
  /** Chunks left claimed because deleting their bytes failed; the next run tries again. */
  errors: { hash: ChunkHash; error: string }[]
  durationMs: number
}

const DEFAULT_BATCH_SIZE = 500
const DEFAULT_CONCURRENCY = 8
/** Rows a dry run looks at, at most: it reads candidates into memory to count them. */
const DRY_RUN_LIMIT = 1_000_000

/**
 * The two-phase garbage collector. Nothing referenced, and nothing named by an upload session,
 * is ever deleted; and a crash at any step leaves either a chunk's bytes or nothing that
 * points at them.
 *
 * 1. Mark: unreferenced live chunks get `marked_at` (a reference clears it again).
 * 2. Sweep, at least one grace period later, one batch at a time:
 *    a. claim (live -> deleting) in one conditional UPDATE under the `collect` guard: only
 *       chunks still unreferenced, still marked before the cutoff, and named by no session.
 *       A chunk referenced again meanwhile (a dedup hit: "resurrected") is not claimed.
 *       From here on nothing can reference it: `addReferences` only takes live rows, and a
 *       chunk PUT for it is told to retry.
 *    b. delete the bytes. A storage error leaves the claim in place for the next run; it is
 *       never read as "already gone".
 *    c. delete the rows.
 *    A crash after (a) leaves `deleting` rows, which the next run finishes (after a grace
 *    period, so that it never races a collector that is merely slow).
 *
 * Every query runs on the index of unreferenced chunks: the cost follows the garbage, not the
 * size of the store. Runs beside normal traffic; several may run at once (on several API
 * nodes), since each claim is taken by exactly one of them.
 */
export class GarbageCollector {
  readonly #batchSize: number
  readonly #concurrency: number

  constructor(
    private readonly meta: MetadataStore,
    private readonly blobs: BlobStore,
    private readonly clock: Clock,
    private readonly options: GarbageCollectorOptions,
  ) {
    this.#batchSize = options.batchSize ?? DEFAULT_BATCH_SIZE
    this.#concurrency = options.concurrency ?? DEFAULT_CONCURRENCY
  }

  async run(runOptions: GcRunOptions = {}): Promise<GcReport> {
    const started = performance.now()
    const dryRun = runOptions.dryRun ?? false
    const now = this.clock()
    const cutoff = now - this.options.graceMs
    const report: GcReport = {
      dryRun,
      expiredUploads: 0,
      resumed: 0,
      swept: 0,
      sweptBytes: 0,
      marked: 0,
      orphans: 0,
      errors: [],
      durationMs: 0,
    }
    if (dryRun) {
      const claimable = await this.meta.collector.claimable(cutoff, DRY_RUN_LIMIT)
      report.swept = claimable.length
      report.sweptBytes = claimable.reduce((sum, chunk) => sum + chunk.size, 0)
      report.marked = await this.meta.collector.countUnmarked()
      if (runOptions.orphans) report.orphans = await this.#sweepOrphans(cutoff, true, report)
    } else {
      report.expiredUploads = await this.meta.uploads.deleteExpired(now)
      report.resumed = await this.#drain(
        () => this.meta.collector.takeOverStale(cutoff, now, this.#batchSize),
        report,
      )
      await this.#drain(
        () =>
          this.meta.transaction(async (tx) => {
            await tx.chunks.guard('collect')
            return tx.collector.claim(cutoff, now, this.#batchSize)
          }),
        report,
      )
      if (runOptions.orphans) report.orphans = await this.#sweepOrphans(cutoff, false, report)
      report.marked = await this.meta.collector.mark(now)
    }
    report.durationMs = Math.round(performance.now() - started)
    return report
  }

  /** Claims batch after batch and deletes each; answers how many chunks were claimed. */
  async #drain(claimNext: () => Promise<ChunkRecord[]>, report: GcReport): Promise<number> {
    let total = 0
    for (;;) {
      const claimed = await claimNext()
      if (claimed.length === 0) return total
      crashPoint('gc.sweep.after-claim')
      await pausePoint('gc.sweep.after-claim')
      const { deleted, forgotten } = await this.#deleteClaimed(claimed, report)
      total += claimed.length
      report.swept += forgotten.length
      report.sweptBytes += forgotten.reduce((sum, chunk) => sum + chunk.size, 0)
      // Every chunk of the batch failed: the store is failing; stop rather than spin.
      if (deleted.length === 0) return total
    }
  }

  /**
   * Deletes the copies of claimed chunks, then the rows of those whose copies are gone. Answers
   * the chunks whose copies went, and of those the ones whose rows this run removed: a chunk
   * another collector finished first (it took this one's claim over) is its to count.
   */
  async #deleteClaimed(claimed: readonly ChunkRecord[], report: GcReport) {
    const deleted = await this.#deleteCopies(claimed, report)
    crashPoint('gc.sweep.after-blob-delete')
    await pausePoint('gc.sweep.after-blob-delete')
    const removed = new Set((await this.meta.collector.forget(deleted)).map(blobName))
    crashPoint('gc.sweep.after-row-delete')
    await pausePoint('gc.sweep.after-row-delete')
    return { deleted, forgotten: deleted.filter((chunk) => removed.has(blobName(chunk))) }
  }

  /**
   * Deletes these copies, `concurrency` at a time; answers those deleted. Each is the claimed
   * copy, by its generation: never a copy of the same chunk stored since (domain/blob-key.ts).
   */
  async #deleteCopies<T extends BlobKey>(copies: readonly T[], report: GcReport): Promise<T[]> {
    const deleted: T[] = []
    let next = 0
    const worker = async () => {
      while (next < copies.length) {
        const copy = copies[next++] as T
        try {
          await this.blobs.delete(copy)
          deleted.push(copy)
        } catch (error) {
          report.errors.push({ hash: copy.hash, error: String(error) })
        }
      }
    }
    await Promise.all(Array.from({ length: Math.min(this.#concurrency, copies.length) }, worker))
    return deleted
  }

  /**
   * Copies no row names are left by a crash between writing a chunk and recording it, by an
   * upload whose session ended meanwhile, or by the loser of two uploads of one chunk. Each
   * write has a generation of its own, so nothing can ever come to name such a copy once no
   * session names its hash (checked under the `collect` guard), and it is deleted as it is.
   * This walks the whole blob store, so it runs less often than the sweep.
   */
  async #sweepOrphans(cutoff: Millis, dryRun: boolean, report: GcReport): Promise<number> {
    let found = 0
    let batch: StoredBlob[] = []
    const flush = async () => {
      const named = await this.meta.collector.generations(batch.map((blob) => blob.hash))
      // Young copies may be uploads in flight: they get the grace period too.
      const candidates = batch.filter(
        (blob) => named.get(blob.hash) !== blob.generation && blob.storedAt <= cutoff,
      )
      batch = []
      if (candidates.length === 0) return
      if (dryRun) {
        // Read without the guard: a dry run claims nothing, and a count a moment stale is fine.
        found += (await this.meta.collector.orphans(candidates)).length
        return
      }
      const orphans = await this.meta.transaction(async (tx) => {
        await tx.chunks.guard('collect')
        return tx.collector.orphans(candidates)
      })
      found += orphans.length
      await this.#deleteCopies(orphans, report)
    }
    for await (const blob of this.blobs.list()) {
      batch.push(blob)
      if (batch.length >= this.#batchSize) await flush()
    }
    if (batch.length > 0) await flush()
    return found
  }
}

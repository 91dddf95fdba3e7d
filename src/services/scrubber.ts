import { createHash } from 'node:crypto'
import type { Clock } from '../domain/clock.js'
import type { ChunkHash } from '../domain/hashes.js'
import type { ChunkRecord, Millis } from '../domain/model.js'
import type { BlobKey, BlobStore, StoredBlob } from '../ports/blob-store.js'
import type { MetadataStore } from '../ports/metadata-store.js'
import type { Sha256Pool } from '../support/sha256-pool.js'
import type { ChunkIntegrity } from './chunk-integrity.js'

export interface ScrubOptions {
  /**
   * The share of chunks to re-read, least recently verified first (0 < fraction <= 1), so
   * that a run every day with 0.1 covers every chunk every ten days. 1 reads them all and
   * also walks the blob store for bytes that no row knows.
   */
  fraction?: number
  /** Chunks read at once. */
  concurrency?: number
  /**
   * Bytes with no row younger than this are an upload in progress, not a problem (the
   * collector's grace period is the natural value).
   */
  unknownGraceMs?: Millis
}

export interface ScrubReport {
  /** Chunks re-read and hashed, and their bytes. */
  checked: number
  bytes: number
  /** Bytes whose SHA-256 is not their name (bit rot, a torn or truncated file). */
  corrupt: { hash: ChunkHash; actual: string; size: number; expectedSize: number }[]
  /** Live rows whose bytes are not there. */
  missing: ChunkHash[]
  /** Chunks that could not be read (EIO...): a fault, never counted as missing. */
  readErrors: { hash: ChunkHash; error: string }[]
  /**
   * Of the corrupt and missing, the chunks this run marked damaged: no longer offered for
   * deduplication, so that the next upload of each stores a good copy.
   */
  markedDamaged: ChunkHash[]
  /** Chunks marked damaged (by this run, an earlier one or a download) and not repaired yet. */
  damaged: number
  /** Hashes that a version names but that have no live row. */
  danglingReferences: ChunkHash[]
  /** Versions whose declared sizes disagree with their chunks (AuditRepository.sizeMismatches). */
  sizeMismatches: { nodeId: string; version: number; problem: string }[]
  /** Rows whose reference count is not the number of version entries naming them. */
  refCountMismatches: { hash: ChunkHash; refCount: number; actual: number }[]
  /** Stored copies no row names (orphans; the collector reclaims them). Full runs only. */
  unknown: BlobKey[]
  /**
   * The walk of the store for unknown bytes stopped on a storage fault (full runs only): `unknown`
   * is then incomplete. The chunks checked are reported all the same.
   */
  storeErrors: string[]
  /** True when nothing above was found. */
  clean: boolean
  durationMs: number
}

const PAGE = 1000
const DEFAULT_CONCURRENCY = 4
/**
 * Up to this many bytes a chunk is read whole and hashed on a worker thread, so that hashing
 * uses every core while the main thread reads on. Chunks are at most 16 MiB (API.md), so this
 * holds for every sound chunk; a file grown beyond it is hashed here as a stream.
 */
const WHOLE_READ_LIMIT = 16 * 1024 * 1024 + 1

/**
 * Re-reads stored chunks and checks them against their names, and checks that the metadata
 * and the store agree. It reports, and marks what it finds wrong or gone damaged (so that
 * uploads replace it); it never deletes anything.
 */
export class Scrubber {
  constructor(
    private readonly meta: MetadataStore,
    private readonly blobs: BlobStore,
    private readonly clock: Clock,
    private readonly integrity: ChunkIntegrity,
    private readonly hashers: Sha256Pool,
  ) {}

  async run(options: ScrubOptions = {}): Promise<ScrubReport> {
    const started = performance.now()
    const fraction = options.fraction ?? 1
    if (!(fraction > 0 && fraction <= 1)) throw new RangeError('fraction must be in (0, 1]')
    const report: ScrubReport = {
      checked: 0,
      bytes: 0,
      corrupt: [],
      missing: [],
      readErrors: [],
      markedDamaged: [],
      damaged: 0,
      danglingReferences: [],
      sizeMismatches: [],
      refCountMismatches: [],
      unknown: [],
      storeErrors: [],
      clean: false,
      durationMs: 0,
    }
    const concurrency = options.concurrency ?? DEFAULT_CONCURRENCY
    if (fraction === 1) {
      for (let after: ChunkHash | null = null; ; ) {
        const page = await this.meta.audit.liveChunks(after, PAGE)
        await this.#verifyAll(page, concurrency, report)
        if (page.length < PAGE) break
        after = page.at(-1)?.hash ?? null
      }
      await this.#findUnknown(options.unknownGraceMs ?? 0, report)
    } else {
      const wanted = Math.ceil((await this.meta.audit.countLive()) * fraction)
      await this.#verifyAll(await this.meta.audit.leastRecentlyVerified(wanted), concurrency, report)
    }
    report.danglingReferences = await this.meta.audit.danglingReferences()
    report.refCountMismatches = await this.meta.audit.refCountMismatches()
    report.sizeMismatches = await this.meta.audit.sizeMismatches()
    report.damaged = await this.meta.audit.countDamaged()
    report.clean =
      report.corrupt.length +
        report.missing.length +
        report.readErrors.length +
        report.damaged +
        report.danglingReferences.length +
        report.sizeMismatches.length +
        report.refCountMismatches.length +
        report.unknown.length +
        report.storeErrors.length ===
      0
    report.durationMs = Math.round(performance.now() - started)
    return report
  }

  async #verifyAll(chunks: readonly ChunkRecord[], concurrency: number, report: ScrubReport): Promise<void> {
    const verified: ChunkHash[] = []
    let next = 0
    const worker = async () => {
      while (next < chunks.length) {
        const chunk = chunks[next++] as ChunkRecord
        if (await this.#verify(chunk, report)) verified.push(chunk.hash)
      }
    }
    await Promise.all(Array.from({ length: Math.min(concurrency, chunks.length) }, worker))
    // Only good chunks count as verified: a bad one stays first in line for the next run.
    await this.meta.audit.markVerified(verified, this.clock())
  }

  /** Reads and hashes one chunk; answers whether it is whole. */
  async #verify(chunk: ChunkRecord, report: ScrubReport): Promise<boolean> {
    let digest: { hex: string; size: number }
    try {
      const body = await this.blobs.get(chunk)
      if (body === null) {
        // Collected or repaired since the page was read is not a problem; still its copy and gone is.
        const now = await this.meta.chunks.find(chunk.hash)
        if (now?.state === 'live' && now.generation === chunk.generation) {
          report.missing.push(chunk.hash)
          await this.#markDamaged(chunk, 'missing', report)
        }
        return false
      }
      digest = await this.#sha256Of(body)
    } catch (error) {
      report.readErrors.push({ hash: chunk.hash, error: String(error) })
      return false
    }
    const { hex: actual, size } = digest
    report.checked += 1
    report.bytes += size
    if (actual === chunk.hash && size === chunk.size) return true
    report.corrupt.push({ hash: chunk.hash, actual, size, expectedSize: chunk.size })
    await this.#markDamaged(chunk, `reads as ${actual} (${size} bytes)`, report)
    return false
  }

  async #markDamaged(chunk: ChunkRecord, problem: string, report: ScrubReport): Promise<void> {
    if ((await this.integrity.damaged(chunk, 'scrub', problem)) === 'marked')
      report.markedDamaged.push(chunk.hash)
  }

  /** SHA-256 and length of a chunk's bytes: on a worker thread while they fit WHOLE_READ_LIMIT. */
  async #sha256Of(body: AsyncIterable<unknown>): Promise<{ hex: string; size: number }> {
    const pieces: Buffer[] = []
    let size = 0
    let streaming: ReturnType<typeof createHash> | null = null
    for await (const raw of body) {
      const piece = raw as Buffer
      size += piece.length
      if (streaming) streaming.update(piece)
      else pieces.push(piece)
      if (!streaming && size > WHOLE_READ_LIMIT) {
        streaming = createHash('sha256')
        for (const held of pieces.splice(0)) streaming.update(held)
      }
    }
    if (streaming) return { hex: streaming.digest('hex'), size }
    return this.hashers.digest(pieces)
  }

  async #findUnknown(graceMs: Millis, report: ScrubReport): Promise<void> {
    const settledBefore = this.clock() - graceMs
    let batch: BlobKey[] = []
    const flush = async () => {
      const named = await this.meta.collector.generations(batch.map((copy) => copy.hash))
      report.unknown.push(...batch.filter((copy) => named.get(copy.hash) !== copy.generation))
      batch = []
    }
    for await (const blob of this.#listReportingFaults(report)) {
      if (blob.storedAt > settledBefore) continue
      batch.push({ hash: blob.hash, generation: blob.generation })
      if (batch.length >= PAGE) await flush()
    }
    if (batch.length > 0) await flush()
  }

  /** The store's listing; a fault ends it early and is reported, rather than losing the whole run. */
  async *#listReportingFaults(report: ScrubReport): AsyncIterable<StoredBlob> {
    try {
      yield* this.blobs.list()
    } catch (error) {
      report.storeErrors.push(String(error))
    }
  }
}

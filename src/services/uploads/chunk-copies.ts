import type { Readable } from 'node:stream'
import { finished } from 'node:stream/promises'
import { type BlobKey, newGeneration } from '../../domain/blob-key.js'
import type { Clock } from '../../domain/clock.js'
import type { ChunkHash } from '../../domain/hashes.js'
import type { BlobStore } from '../../ports/blob-store.js'
import type { MetadataStore, Repositories } from '../../ports/metadata-store.js'
import type { ChunkIntegrity } from '../chunk-integrity.js'
import { VerifyingStream } from '../verifying-stream.js'
import { chunkBusy } from './upload-errors.js'

/** A chunk as an upload declares it. */
export interface DeclaredChunk {
  index: number
  hash: ChunkHash
  size: number
}

/** What an upload did with a chunk's bytes: checked them against a sound copy, or stored a copy. */
export type Received = { kind: 'present' } | { kind: 'copy'; copy: BlobKey }

/** A copy that no row names once the upload's row is recorded, to delete after the commit. */
export interface Recorded {
  unused?: BlobKey
}

/**
 * Chunk bytes sent by a client, for a session's chunk PUT or a one-request upload. They are
 * hashed while they stream to the blob store, which keeps nothing unless the hash and length
 * match; a row names a copy only once its bytes are durable (the store's `put` has resolved).
 */
export class ChunkCopies {
  constructor(
    private readonly meta: MetadataStore,
    private readonly blobs: BlobStore,
    private readonly clock: Clock,
    private readonly integrity: ChunkIntegrity,
  ) {}

  /**
   * Reads `body` through verification: a chunk already stored soundly is only read and checked
   * (uploading the bytes is how a client proves it has them); otherwise the bytes go to a new
   * copy under a generation of their own, never over an existing one. On failure the body is
   * destroyed, which tells its producer to stop.
   */
  async accept(body: Readable, chunk: DeclaredChunk): Promise<Received> {
    const verifying = new VerifyingStream({ expectedHash: chunk.hash, expectedSize: chunk.size })
    // A small body can arrive, and fail verification, before anyone reads the stream; the
    // stream keeps the error for `put` / `finished` below, so an early one must not crash.
    verifying.on('error', () => {})
    // Not stream.pipeline: it would start draining the verifying stream itself before the
    // blob store reads it. Errors of the body (the client went away) are forwarded by hand.
    body.once('error', (error) => verifying.destroy(error))
    body.pipe(verifying)
    try {
      return await this.#receive(chunk, verifying)
    } catch (error) {
      // Stop storing; the body's producer decides what becomes of the bytes not read.
      body.unpipe(verifying)
      verifying.destroy()
      body.destroy()
      throw error
    }
  }

  /**
   * Records, in the caller's transaction, that the chunk's bytes are held: the first copy of a
   * new chunk, or the replacement of a damaged one; or that the sound copy checked against is
   * still live. Answers the copy left unused, if any.
   */
  async record(tx: Repositories, chunk: DeclaredChunk, received: Received): Promise<Recorded> {
    if (received.kind === 'copy') return this.#recordCopy(tx, received.copy, chunk)
    if ((await tx.chunks.find(chunk.hash))?.state !== 'live') throw chunkBusy(chunk.index)
    return {}
  }

  /** Removes a copy no row names; should this fail, the collector's orphan walk removes it. */
  async discard(copy: BlobKey): Promise<void> {
    await this.blobs.delete(copy).catch(() => {})
  }

  async #receive(chunk: DeclaredChunk, verifying: VerifyingStream): Promise<Received> {
    // The row, not the file, says whether the bytes are there to stay: a file may be an
    // orphan, or on its way out with the collector (then the client tries again shortly).
    const stored = await this.meta.chunks.find(chunk.hash)
    if (stored?.state === 'deleting') throw chunkBusy(chunk.index)
    if (stored && !stored.damaged) {
      // A copy gone or of the wrong length is damage that a stat shows (flipped bits take a read:
      // a download or scrub finds those): it is marked, and repaired by this very upload.
      const copy = await this.blobs.stat(stored)
      if (copy !== null && copy.size === stored.size) {
        verifying.resume()
        await finished(verifying)
        return { kind: 'present' }
      }
      const problem = copy === null ? 'missing' : `${copy.size} bytes, ${stored.size} expected`
      await this.integrity.damaged(stored, 'upload', problem)
    }
    const copy = { hash: chunk.hash, generation: newGeneration() }
    await this.blobs.put(copy, verifying)
    return { kind: 'copy', copy }
  }

  async #recordCopy(tx: Repositories, copy: BlobKey, chunk: DeclaredChunk): Promise<Recorded> {
    if (await tx.chunks.insert({ ...copy, size: chunk.size }, this.clock())) return {}
    const row = await tx.chunks.find(copy.hash)
    if (row?.state !== 'live') throw chunkBusy(chunk.index)
    if (
      row.damaged &&
      (await tx.chunks.replaceDamaged(copy.hash, row.generation, copy.generation, this.clock()))
    ) {
      return { unused: { hash: row.hash, generation: row.generation } }
    }
    // Another upload of the same chunk recorded its copy first.
    return { unused: copy }
  }
}

/** Whether the client's bytes were kept (false) or matched bytes the server held (true). */
export const wasDeduplicated = (received: Received, recorded: Recorded): boolean =>
  received.kind === 'present' || (received.kind === 'copy' && recorded.unused === received.copy)

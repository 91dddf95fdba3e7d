import type { Readable } from 'node:stream'
import { finished } from 'node:stream/promises'
import { type BlobKey, newGeneration } from '../../domain/blob-key.js'
import type { Clock } from '../../domain/clock.js'
import { AppError, invalid } from '../../domain/errors.js'
import { type ChunkHash, isChunkHash } from '../../domain/hashes.js'
import type { UploadChunkRecord, User } from '../../domain/model.js'
import type { BlobStore } from '../../ports/blob-store.js'
import type { MetadataStore, Repositories } from '../../ports/metadata-store.js'
import { crashPoint } from '../../support/crash-points.js'
import { pausePoint } from '../../support/pause-points.js'
import type { ChunkIntegrity } from '../chunk-integrity.js'
import { VerifyingStream } from '../verifying-stream.js'
import { assertChunkIndex } from './chunk-index.js'
import type { OpenSessions } from './open-sessions.js'
import { chunkBusy, uploadNotFound } from './upload-errors.js'

/** One chunk's bytes sent for a session (API.md: `PUT /upload/:id/chunk/:index`). */
export interface ChunkUpload {
  user: User
  uploadId: string
  /** The chunk's index in the declaration; NaN for one not written as an index at all. */
  index: number
  /** The hash the client says the bytes have (X-Chunk-Hash), as sent: checked here. */
  hash: string | undefined
  /** The byte count the client announced (Content-Length), if any: checked before reading. */
  contentLength: number | undefined
  /**
   * The bytes. Read once; destroyed when they are refused, which tells its producer to stop
   * (the HTTP layer then drops the rest of the request: http/chunk-body.ts).
   */
  body: Readable
}

export interface ChunkReceipt {
  index: number
  hash: ChunkHash
  deduplicated: boolean
}

/** What a chunk PUT did with the bytes: checked them against a sound copy, or stored a copy. */
type Received = { kind: 'present' } | { kind: 'copy'; copy: BlobKey }

/** A copy that no row names once the PUT's row is recorded, to delete after the commit. */
interface Recorded {
  unused?: BlobKey
}

/**
 * Receives chunk bytes for a session. They are hashed while they stream to the blob store,
 * which keeps nothing unless the hash and length match; the chunk row is written only after the
 * bytes are durable.
 */
export class ChunkReceiver {
  constructor(
    private readonly meta: MetadataStore,
    private readonly blobs: BlobStore,
    private readonly clock: Clock,
    private readonly integrity: ChunkIntegrity,
    private readonly sessions: OpenSessions,
  ) {}

  async put(command: ChunkUpload): Promise<ChunkReceipt> {
    const { user, uploadId, body } = command
    const upload = await this.sessions.usable(user, uploadId)
    const chunk = await this.#declaredChunk(upload.id, upload.totalChunks, command)
    const { index } = chunk
    const verifying = new VerifyingStream({ expectedHash: chunk.hash, expectedSize: chunk.size })
    // A small body can arrive, and fail verification, before anyone reads the stream; the
    // stream keeps the error for `put` / `finished` below, so an early one must not crash.
    verifying.on('error', () => {})
    // Not stream.pipeline: it would start draining the verifying stream itself before the
    // blob store reads it. Errors of the body (the client went away) are forwarded by hand.
    body.once('error', (error) => verifying.destroy(error))
    body.pipe(verifying)
    let received: Received
    try {
      received = await this.#receive(chunk, verifying)
    } catch (error) {
      // Stop storing; the body's producer decides what becomes of the bytes not read.
      body.unpipe(verifying)
      verifying.destroy()
      body.destroy()
      throw error
    }
    crashPoint('chunk.put.before-row')
    await pausePoint('chunk.put.before-row')
    let recorded: Recorded
    try {
      recorded = await this.#recordReceipt(user, upload.id, chunk, received)
    } catch (error) {
      // Our copy is recorded nowhere, and its generation is ours alone: nobody else can need it.
      if (received.kind === 'copy') await this.#discard(received.copy)
      throw error
    }
    crashPoint('chunk.put.after-row')
    // A copy no row names any more (ours, beaten by another upload of the chunk; or the damaged
    // one ours replaced). Should this fail, the collector's orphan walk removes it.
    if (recorded.unused) await this.#discard(recorded.unused)
    const deduplicated =
      received.kind === 'present' || (received.kind === 'copy' && recorded.unused === received.copy)
    return { index, hash: chunk.hash, deduplicated }
  }

  /** The declared chunk the PUT names, once its hash and length agree with the declaration. */
  async #declaredChunk(uploadId: string, totalChunks: number, command: ChunkUpload) {
    const index = assertChunkIndex(command.index, totalChunks)
    const chunk = await this.meta.uploads.chunk(uploadId, index)
    if (!chunk) throw new AppError('INVALID_CHUNK_INDEX', `chunk index ${index} is out of range`)
    if (!isChunkHash(command.hash))
      throw invalid('X-Chunk-Hash must be the lowercase hex SHA-256 of the chunk')
    if (command.hash !== chunk.hash) {
      throw new AppError('HASH_MISMATCH', `chunk ${index} was declared at init with hash ${chunk.hash}`)
    }
    const { contentLength } = command
    if (contentLength !== undefined && contentLength !== chunk.size) {
      throw new AppError('CHUNK_SIZE_MISMATCH', `chunk ${index} is ${chunk.size} bytes, not ${contentLength}`)
    }
    return chunk
  }

  /**
   * Reads the chunk's bytes through the verifying stream. A chunk already stored soundly is
   * only read and checked (uploading the bytes is how a client proves it has them); otherwise
   * the bytes go to a new copy under a generation of their own, never over an existing one.
   */
  async #receive(chunk: UploadChunkRecord, verifying: VerifyingStream): Promise<Received> {
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

  /** Only now that the bytes are durable may a row say so; one commit (one WAL sync) for both. */
  #recordReceipt(
    user: User,
    uploadId: string,
    chunk: UploadChunkRecord,
    received: Received,
  ): Promise<Recorded> {
    return this.meta.transaction(async (tx) => {
      await tx.chunks.guard('use')
      // The session is what kept the collector away from these bytes while they streamed in:
      // if it was aborted or expired meanwhile, they may be gone again, so nothing is recorded.
      if (!(await tx.uploads.find(user.id, uploadId, this.clock()))) throw uploadNotFound()
      const outcome =
        received.kind === 'copy' ? await this.#recordCopy(tx, received.copy, chunk.size, chunk.index) : {}
      if (received.kind === 'present' && (await tx.chunks.find(chunk.hash))?.state !== 'live') {
        throw chunkBusy(chunk.index)
      }
      await tx.uploads.setStateByHash(uploadId, [chunk.hash], 'ok')
      return outcome
    })
  }

  /**
   * Makes a durable copy the chunk's bytes, in the caller's transaction: the first copy of a
   * new chunk, or the replacement of a damaged one. Answers the copy left unused, if any.
   */
  async #recordCopy(tx: Repositories, copy: BlobKey, size: number, index: number): Promise<Recorded> {
    if (await tx.chunks.insert({ ...copy, size }, this.clock())) return {}
    const row = await tx.chunks.find(copy.hash)
    if (row?.state !== 'live') throw chunkBusy(index)
    if (
      row.damaged &&
      (await tx.chunks.replaceDamaged(copy.hash, row.generation, copy.generation, this.clock()))
    ) {
      return { unused: { hash: row.hash, generation: row.generation } }
    }
    // Another upload of the same chunk recorded its copy first.
    return { unused: copy }
  }

  async #discard(copy: BlobKey): Promise<void> {
    await this.blobs.delete(copy).catch(() => {})
  }
}

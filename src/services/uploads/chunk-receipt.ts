import type { Readable } from 'node:stream'
import type { Clock } from '../../domain/clock.js'
import { AppError, invalid } from '../../domain/errors.js'
import { type ChunkHash, isChunkHash } from '../../domain/hashes.js'
import type { UploadChunkRecord, User } from '../../domain/model.js'
import type { MetadataStore } from '../../ports/metadata-store.js'
import { crashPoint } from '../../support/crash-points.js'
import { pausePoint } from '../../support/pause-points.js'
import { type ChunkCopies, type Received, type Recorded, wasDeduplicated } from './chunk-copies.js'
import { assertChunkIndex } from './chunk-index.js'
import type { OpenSessions } from './open-sessions.js'
import { uploadNotFound } from './upload-errors.js'

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

/** Receives a session's chunks (the bytes' own rules are ChunkCopies'). */
export class ChunkReceiver {
  constructor(
    private readonly meta: MetadataStore,
    private readonly clock: Clock,
    private readonly copies: ChunkCopies,
    private readonly sessions: OpenSessions,
  ) {}

  async put(command: ChunkUpload): Promise<ChunkReceipt> {
    const { user, uploadId, body } = command
    const upload = await this.sessions.usable(user, uploadId)
    const chunk = await this.#declaredChunk(upload.id, upload.totalChunks, command)
    const received = await this.copies.accept(body, chunk)
    crashPoint('chunk.put.before-row')
    await pausePoint('chunk.put.before-row')
    let recorded: Recorded
    try {
      recorded = await this.#recordReceipt(user, upload.id, chunk, received)
    } catch (error) {
      // Our copy is recorded nowhere, and its generation is ours alone: nobody else can need it.
      if (received.kind === 'copy') await this.copies.discard(received.copy)
      throw error
    }
    crashPoint('chunk.put.after-row')
    // A copy no row names any more (ours, beaten by another upload of the chunk; or the damaged
    // one ours replaced).
    if (recorded.unused) await this.copies.discard(recorded.unused)
    return { index: chunk.index, hash: chunk.hash, deduplicated: wasDeduplicated(received, recorded) }
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
      const outcome = await this.copies.record(tx, chunk, received)
      await tx.uploads.setStateByHash(uploadId, [chunk.hash], 'ok')
      return outcome
    })
  }
}

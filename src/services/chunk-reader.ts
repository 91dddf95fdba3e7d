import { AppError, notFound } from '../domain/errors.js'
import type { NodeRecord, VersionRecord } from '../domain/model.js'
import type { BlobStore } from '../ports/blob-store.js'
import type { ChunkCopy } from '../ports/metadata/version-repository.js'
import type { MetadataStore } from '../ports/metadata-store.js'
import { pausePoint } from '../support/pause-points.js'
import type { Sha256Pool } from '../support/sha256-pool.js'
import type { ChunkIntegrity } from './chunk-integrity.js'

/** What a download of one version needs. */
export interface DownloadPlan {
  file: NodeRecord
  version: VersionRecord
  /**
   * Bytes [start, end] of the version, each chunk checked against its hash as it streams.
   *
   * The chunk list is read here, in one snapshot with the version, before any byte goes out:
   * a version pruned meanwhile is NOT_FOUND, and a range that touches a chunk known to be
   * damaged is CONTENT_DAMAGED, both while the caller can still answer with an error.
   * Once streaming, a chunk whose bytes turn out wrong or gone ends the stream with an error
   * before its last piece is sent, so a client never receives a whole, wrong response.
   */
  open(start: number, end: number): Promise<AsyncIterable<Buffer>>
}

/** Reads versions for downloads, verifying every chunk (DownloadPlan.open). */
export class ChunkReader {
  constructor(
    private readonly meta: MetadataStore,
    private readonly blobs: BlobStore,
    private readonly integrity: ChunkIntegrity,
    private readonly hashers: Sha256Pool,
  ) {}

  plan(file: NodeRecord, version: VersionRecord): DownloadPlan {
    return {
      file,
      version,
      open: async (start, end) => {
        await pausePoint('download.before-plan')
        const read = await this.meta.versions.readPlan(file.id, version.version, start, end)
        // Pruned (or replaced by a version of the same number: ids never repeat) since it was found.
        if (!read || read.version.id !== version.id) throw notFound('that version no longer exists')
        const chunks = coveringChunks(read.chunks, start, end, version)
        await pausePoint('download.after-plan')
        return this.#stream(chunks, start, end)
      },
    }
  }

  async *#stream(chunks: readonly SoundChunk[], start: number, end: number): AsyncGenerator<Buffer> {
    for (const chunk of chunks) yield* this.#verifiedSlice(chunk, start, end)
  }

  /**
   * The part of one chunk inside [start, end]. The whole chunk is read and hashed (its hash is
   * the only way to know the bytes are right), and the last piece of the slice is held back
   * until the hash matches: on a mismatch the stream fails with that piece unsent.
   */
  async *#verifiedSlice(chunk: SoundChunk, start: number, end: number): AsyncGenerator<Buffer> {
    const from = Math.max(start, chunk.offset) - chunk.offset
    const to = Math.min(end, chunk.offset + chunk.size - 1) - chunk.offset
    const copy = { hash: chunk.hash, generation: chunk.generation }
    const bytes = await this.blobs.get(copy)
    if (!bytes) throw await this.#damaged(chunk, 'missing')
    // Hashed on another core as it streams: on this one it would cost a third of the throughput.
    const sha256 = this.hashers.stream()
    let position = 0
    let held: Buffer | null = null
    for await (const raw of bytes) {
      const piece = raw as Buffer
      sha256.update(piece)
      const sliceStart = Math.max(from - position, 0)
      const sliceEnd = Math.min(to + 1 - position, piece.length)
      position += piece.length
      if (sliceStart >= sliceEnd) continue
      if (held) yield held
      held = piece.subarray(sliceStart, sliceEnd)
    }
    const { hex: actual } = await sha256.digest()
    if (actual !== chunk.hash || position !== chunk.size) {
      throw await this.#damaged(chunk, `reads as ${actual} (${position} bytes, ${chunk.size} expected)`)
    }
    if (held) yield held
  }

  async #damaged(chunk: SoundChunk, problem: string): Promise<AppError> {
    const found = await this.integrity.damaged(chunk, 'download', problem)
    // The chunk moved on since the plan was read (its version was pruned and it was collected):
    // the download is of something that no longer exists, not of damaged bytes.
    return found === 'stale' ? notFound('that version no longer exists') : contentDamaged(chunk.index)
  }
}

type SoundChunk = ChunkCopy & { generation: string }

/**
 * The chunks that hold bytes [start, end], checked to cover them without a gap, and each to
 * have a sound copy. Anything else is known before a byte is sent, so it is an error answer.
 */
function coveringChunks(chunks: readonly ChunkCopy[], start: number, end: number, version: VersionRecord) {
  const covering: SoundChunk[] = []
  let next = start
  for (const chunk of chunks) {
    if (chunk.offset > end) break
    if (chunk.offset > next) break
    if (chunk.generation === null || chunk.damaged) throw contentDamaged(chunk.index)
    covering.push(chunk as SoundChunk)
    next = chunk.offset + chunk.size
  }
  if (next <= end) {
    throw new AppError(
      'CONTENT_DAMAGED',
      `version ${version.version} has no chunk for bytes from ${next} on: its stored chunk list is damaged`,
    )
  }
  return covering
}

const contentDamaged = (index: number): AppError =>
  new AppError(
    'CONTENT_DAMAGED',
    `the stored bytes of chunk ${index} of this file are damaged; uploading the file again repairs them`,
    { chunk: index },
  )

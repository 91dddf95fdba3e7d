import { setImmediate } from 'node:timers/promises'
import type { PlannedChunk } from '../../domain/chunk-plan.js'
import type { Clock } from '../../domain/clock.js'
import { AppError } from '../../domain/errors.js'
import type { NodeRecord, UploadChunkRecord, UploadRecord, User } from '../../domain/model.js'
import type { MetadataStore } from '../../ports/metadata-store.js'
import { pausePoint } from '../../support/pause-points.js'
import { locateTarget } from '../access.js'
import { classifyChunks } from './chunk-states.js'
import { checkDeclaration, newSessionRecord, replacedFile, type UploadDeclaration } from './declaration.js'
import type { OpenSessions } from './open-sessions.js'
import { reserveQuota } from './quota-reservation.js'
import { sessionView, type UploadSessionView } from './session-view.js'
import { uploadNotFound } from './upload-errors.js'

/**
 * Chunks of a declaration classified and recorded per transaction (SessionLifecycle.#declare):
 * a few tens of milliseconds of work each, on SQLite as on PostgreSQL.
 */
const DECLARE_BATCH = 1_000
/** How long a session whose declaration is still being recorded lives, should init die halfway. */
const DECLARING_TTL_MS = 10 * 60_000

export interface UploadOptions {
  sessionTtlMs: number
  /** Sessions one user may have open at once (UPLOAD_MAX_OPEN_SESSIONS); one more is 429. */
  maxOpenSessions: number
  /** Every declared chunk but a file's last is at least this large (UPLOAD_MIN_CHUNK_BYTES). */
  minChunkBytes: number
}

/** An upload session's beginning and end, but for complete: declare, look, abort, expire. */
export class SessionLifecycle {
  constructor(
    private readonly meta: MetadataStore,
    private readonly clock: Clock,
    private readonly sessions: OpenSessions,
    private readonly options: UploadOptions,
  ) {}

  async init(user: User, declaration: UploadDeclaration): Promise<UploadSessionView> {
    const declared = checkDeclaration(declaration, this.options.minChunkBytes)
    // The caller's folder, or one shared with them as an editor: the file is the folder owner's,
    // and counts against the owner's quota.
    const { node: folder } = await locateTarget(this.meta, user, declaration.folderId, 'folderId')
    const existing = await this.meta.nodes.findLiveChild(folder.id, declared.filename)
    if (existing?.kind === 'folder')
      throw new AppError('NAME_TAKEN', `a folder named "${declared.filename}" exists here`)
    const upload = newSessionRecord(declared, {
      userId: user.id,
      folderId: folder.id,
      ownerId: folder.ownerId,
      now: this.clock(),
      ttlMs: this.options.sessionTtlMs,
    })
    const replaced = replacedFile(existing, declared.baseVersion)
    const chunks = await this.#declare(user, upload, declared.plan.chunks, replaced)
    return sessionView(upload, chunks)
  }

  /**
   * Records the session and its chunk list, each chunk classified and recorded under the
   * chunk guard in one transaction: a chunk the collector claims meanwhile is seen as needed,
   * and one it has not claimed is protected by this session from then on. A long list goes in
   * bounded batches, one short transaction each, so that no declaration holds the guard (or
   * SQLite's single writer) long enough to stall other requests; until the last batch is in,
   * the session would expire soon, so one whose init died halfway does not linger.
   * The first transaction also takes the session's quota reservation (`reserveQuota`).
   */
  async #declare(
    user: User,
    upload: UploadRecord,
    planned: readonly PlannedChunk[],
    replaced: NodeRecord | null,
  ): Promise<UploadChunkRecord[]> {
    const batched = planned.length > DECLARE_BATCH
    const declaring = batched ? { ...upload, expiresAt: upload.createdAt + DECLARING_TTL_MS } : upload
    const chunks: UploadChunkRecord[] = []
    try {
      for (let start = 0; start === 0 || start < planned.length; start += DECLARE_BATCH) {
        const batch = planned.slice(start, start + DECLARE_BATCH)
        const recorded = await this.meta.transaction(async (tx) => {
          // The accounts first, the chunk guard second: the order complete takes them in.
          if (start === 0) await reserveQuota(tx, upload, replaced, this.options.maxOpenSessions)
          await tx.chunks.guard('use')
          const states = await classifyChunks(tx, user.id, batch)
          await pausePoint('upload.init.after-classify')
          const recorded = batch.map((chunk) => ({ ...chunk, state: states.get(chunk.hash) ?? 'needed' }))
          if (start === 0) await tx.uploads.insert(declaring, recorded)
          else await tx.uploads.addChunks(upload.id, recorded)
          return recorded
        })
        chunks.push(...recorded)
        // Between batches, to the back of the event loop's queue: on SQLite every query runs on
        // this thread, so without a turn of the loop other requests would wait for the lot.
        await setImmediate()
      }
      if (batched && !(await this.meta.uploads.setExpiry(upload.id, upload.expiresAt))) throw uploadNotFound()
    } catch (error) {
      // A declaration refused halfway (a size that contradicts a stored chunk) leaves nothing.
      await this.meta.uploads.delete(upload.id).catch(() => {})
      throw error
    }
    return chunks
  }

  /** The session as it stands now: chunks stored meanwhile by anyone are no longer needed. */
  async check(user: User, uploadId: string): Promise<UploadSessionView> {
    const upload = await this.sessions.usable(user, uploadId)
    return sessionView(upload, await this.sessions.refresh(user, upload))
  }

  /** Ends the session and releases its quota reservation; its chunks stay for the collector. */
  async abort(user: User, uploadId: string): Promise<void> {
    const upload = await this.sessions.find(user, uploadId)
    // A complete may have closed it meanwhile: then there is nothing to abort.
    if (!(await this.meta.uploads.delete(upload.id))) throw uploadNotFound()
  }

  /** Removes expired sessions; their chunks stay until the garbage collector decides. */
  sweepExpired(): Promise<number> {
    return this.meta.uploads.deleteExpired(this.clock())
  }
}

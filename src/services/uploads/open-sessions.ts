import type { Clock } from '../../domain/clock.js'
import { AppError } from '../../domain/errors.js'
import type { ChunkHash } from '../../domain/hashes.js'
import { isId } from '../../domain/ids.js'
import type { UploadChunkRecord, UploadChunkState, UploadRecord, User } from '../../domain/model.js'
import type { MetadataStore } from '../../ports/metadata-store.js'
import { mayWriteFolder } from '../access.js'
import { classifyChunks } from './chunk-states.js'
import { uploadNotFound } from './upload-errors.js'

/** How every step of an upload finds the caller's session, and sees its chunks as they are now. */
export class OpenSessions {
  constructor(
    private readonly meta: MetadataStore,
    private readonly clock: Clock,
  ) {}

  /** The caller's open session (not expired, not completed): UPLOAD_NOT_FOUND otherwise. */
  async find(user: User, uploadId: string): Promise<UploadRecord> {
    const upload = isId(uploadId) ? await this.meta.uploads.find(user.id, uploadId, this.clock()) : null
    if (!upload) throw uploadNotFound()
    return upload
  }

  /**
   * An open session of the caller's that they may still use: its target folder live, and theirs
   * or shared with them as an editor still (a member removed or made a viewer since, or a folder
   * trashed since, is 404 until that changes back). Abort needs only `find`.
   */
  async usable(user: User, uploadId: string): Promise<UploadRecord> {
    const upload = await this.find(user, uploadId)
    await this.assertMayStillWrite(user, upload)
    return upload
  }

  async assertMayStillWrite(user: User, upload: UploadRecord): Promise<void> {
    // NOT_FOUND, as `complete` has always answered for a folder deleted meanwhile: the session
    // is there, its folder (for this caller) is not. Restored, or shared again, it goes on.
    if (!(await mayWriteFolder(this.meta, user.id, upload.folderId))) {
      throw new AppError(
        'NOT_FOUND',
        'the folder of this upload was deleted, or you may no longer upload into it',
      )
    }
  }

  /**
   * Re-classifies the chunks not yet uploaded or proven in this session, since anyone may have
   * stored them meanwhile; and, should a chunk the session counted on be gone (it cannot be
   * while the session protects it, but a store may have been restored from a backup), it is
   * needed again rather than trusted.
   */
  async refresh(user: User, upload: UploadRecord): Promise<UploadChunkRecord[]> {
    const chunks = await this.meta.uploads.chunks(upload.id)
    const states = await classifyChunks(this.meta, user.id, chunks)
    const refreshed = chunks.map((chunk) => {
      const now = states.get(chunk.hash) ?? 'needed'
      // `ok` stays ok while the bytes are there: it was uploaded or proven in this session.
      const state = chunk.state === 'ok' && now !== 'needed' ? 'ok' : now
      return state === chunk.state ? chunk : { ...chunk, state }
    })
    const changed = new Map<UploadChunkState, Set<ChunkHash>>()
    refreshed.forEach((chunk, i) => {
      if (chunk === chunks[i]) return
      const hashes = changed.get(chunk.state) ?? new Set()
      changed.set(chunk.state, hashes.add(chunk.hash))
    })
    for (const [state, hashes] of changed)
      await this.meta.uploads.setStateByHash(upload.id, [...hashes], state)
    return refreshed
  }
}

import type { Clock } from '../../domain/clock.js'
import { AppError } from '../../domain/errors.js'
import { contentHashOf } from '../../domain/hashes.js'
import { isId } from '../../domain/ids.js'
import type { NodeRecord, UploadChunkRecord, UploadRecord, User } from '../../domain/model.js'
import type { MetadataStore, Repositories } from '../../ports/metadata-store.js'
import { crashPoint } from '../../support/crash-points.js'
import { pausePoint } from '../../support/pause-points.js'
import { appendVersion, versionMadeBy } from '../append-version.js'
import type { ChangeJournal, ChangeLog } from '../change-journal.js'
import type { VersionHistory } from '../version-history.js'
import type { OpenSessions } from './open-sessions.js'
import { SessionClosed, uploadNotFound } from './upload-errors.js'
import { versionTarget } from './version-target.js'

/** A complete that loses a race on PostgreSQL (a name or version taken meanwhile) is retried. */
const COMPLETE_ATTEMPTS = 3
/**
 * A completed session answers a retried complete until it expires, and at least this long after
 * its completion, should that come just before its expiry.
 */
export const COMPLETION_REMEMBERED_MS = 60 * 60_000

export interface CompletedUpload {
  file: NodeRecord
  conflict: boolean
}

/** The end of a session that makes a file: its new version, with the session's chunks. */
export class UploadCommit {
  constructor(
    private readonly meta: MetadataStore,
    private readonly journal: ChangeJournal,
    private readonly clock: Clock,
    private readonly history: VersionHistory,
    private readonly sessions: OpenSessions,
  ) {}

  /**
   * Makes the file and its version appear together, in one transaction, or not at all.
   * Every chunk must be held and shown to be the caller's (uploaded or proven).
   *
   * Exactly one complete of a session succeeds, however many race; and a complete retried after
   * one succeeded (the client never heard the answer) answers with that same file, never a
   * second version of it. Aborted or expired: 404.
   */
  async complete(user: User, uploadId: string): Promise<CompletedUpload> {
    const upload = isId(uploadId) ? await this.meta.uploads.find(user.id, uploadId, this.clock()) : null
    if (!upload) return this.#completedBefore(user, uploadId)
    await this.sessions.assertMayStillWrite(user, upload)
    const chunks = await this.sessions.refresh(user, upload)
    const stored = await this.meta.chunks.sound(chunks.map((chunk) => chunk.hash))
    const missing = chunks.filter((c) => c.state !== 'ok' || !stored.has(c.hash)).map((c) => c.index)
    if (missing.length > 0) {
      throw new AppError('CHUNKS_MISSING', `${missing.length} chunk(s) are missing or unproven`, { missing })
    }
    await pausePoint('upload.complete.before-commit')
    for (let attempt = 1; ; attempt++) {
      try {
        crashPoint('upload.complete.before-commit')
        const completed = await this.journal.transaction(user.id, (tx, log) =>
          this.#commitVersion(tx, log, user, upload, chunks),
        )
        crashPoint('upload.complete.after-commit')
        return completed
      } catch (error) {
        if (error instanceof SessionClosed) return this.#completedBefore(user, uploadId)
        // Another complete of this session may have won while this one waited, and the world
        // moved on before this one looked (its folder deleted, say): that one's answer stands.
        if (await this.meta.uploads.completion(user.id, upload.id, this.clock())) {
          return this.#completedBefore(user, uploadId)
        }
        const lostRace = error instanceof AppError && error.code === 'NAME_TAKEN'
        if (!lostRace || attempt >= COMPLETE_ATTEMPTS) throw error
      }
    }
  }

  /**
   * The answer of the complete that closed this session: the file, as the version that complete
   * made (newer versions or a rename since are the journal's news); 404 when the session was
   * aborted or expired, or the file has been purged since.
   */
  async #completedBefore(user: User, uploadId: string): Promise<CompletedUpload> {
    const done = isId(uploadId) ? await this.meta.uploads.completion(user.id, uploadId, this.clock()) : null
    if (!done) throw uploadNotFound()
    const file = await this.meta.nodes.findAnyState(done.fileId)
    if (!file) throw new AppError('NOT_FOUND', 'the file this upload made has been deleted since')
    const { version: currentVersion, contentHash, size } = done
    return { file: { ...file, currentVersion, contentHash, size }, conflict: done.conflict }
  }

  async #commitVersion(
    tx: Repositories,
    log: ChangeLog,
    user: User,
    upload: UploadRecord,
    chunks: UploadChunkRecord[],
  ): Promise<CompletedUpload> {
    const { target, conflict, now } = await versionTarget(tx, user, upload, this.clock)
    const contentHash = contentHashOf(chunks.map((chunk) => chunk.hash))
    // Claims the session first: a concurrent complete of it (or an abort) that got there first
    // makes this one roll back and answer what that one made.
    const made = {
      fileId: target.kind === 'existing' ? target.file.id : target.id,
      version: versionMadeBy(target),
      contentHash,
      conflict,
    }
    if (!(await tx.uploads.markCompleted(upload.id, made, now, now + COMPLETION_REMEMBERED_MS))) {
      throw new SessionClosed()
    }
    const content = {
      size: upload.size,
      contentHash,
      chunks: chunks.map(({ index, hash, size, offset }) => ({ index, hash, size, offset })),
      authorId: user.id,
      at: now,
    }
    const file = await appendVersion(tx, this.history, target, content)
    log.record(file, target.kind === 'new' ? 'create' : 'update')
    return { file, conflict }
  }
}

import type { Readable } from 'node:stream'
import { finished } from 'node:stream/promises'
import type { Clock } from '../../domain/clock.js'
import { AppError, invalid } from '../../domain/errors.js'
import { contentHashOf, isChunkHash, sha256Hex } from '../../domain/hashes.js'
import type { ChunkRef, User } from '../../domain/model.js'
import { normalizeName } from '../../domain/names.js'
import type { MetadataStore, Repositories } from '../../ports/metadata-store.js'
import { locateTarget } from '../access.js'
import { appendVersion } from '../append-version.js'
import type { ChangeJournal } from '../change-journal.js'
import { VerifyingStream } from '../verifying-stream.js'
import type { VersionHistory } from '../version-history.js'
import type { ChunkCopies, DeclaredChunk, Received, Recorded } from './chunk-copies.js'
import type { CompletedUpload } from './commit.js'
import { baseVersionOf, replacedFile } from './declaration.js'
import { type UploadTarget, versionTarget } from './version-target.js'

/** A one-request upload that loses a race on PostgreSQL (a name taken meanwhile) is retried. */
const ATTEMPTS = 3
const EMPTY_SHA256 = sha256Hex('')

/** A whole small file in one request (README: `PUT /files/content`). */
export interface DirectUploadCommand {
  user: User
  /** The caller's root when null. */
  folderId: string | null
  /** As sent: the domain judges names. */
  name: unknown
  baseVersion: number | null
  /** The SHA-256 the client says the bytes have (X-Content-SHA256), as sent: checked here. */
  hash: string | undefined
  /** Content-Length as sent; required, so that a file too large is refused before its bytes. */
  contentLength: number | undefined
  /** The bytes; read once, destroyed when refused (as a chunk PUT's body: http/chunk-body.ts). */
  body: Readable
}

/**
 * A file of at most one chunk in one request and one transaction: what a sync client sends for
 * the thousands of small files of a tree, where init + PUT + complete cost three requests and
 * three commits each. The rules are the session's: the bytes are verified against the hash
 * (which is the proof of possession), deduplicated against a sound stored copy, recorded only
 * once durable; the version, conflict, quota and journal rules are complete's.
 */
export class DirectUpload {
  constructor(
    private readonly meta: MetadataStore,
    private readonly journal: ChangeJournal,
    private readonly clock: Clock,
    private readonly history: VersionHistory,
    private readonly copies: ChunkCopies,
    /** The largest file taken in one request: the session's chunk size. */
    private readonly maxBytes: number,
  ) {}

  async put(command: DirectUploadCommand): Promise<CompletedUpload> {
    const { user, body } = command
    const { size, hash } = this.#checkHeaders(command)
    const filename = normalizeName(command.name)
    const baseVersion = baseVersionOf(command.baseVersion)
    // Refused before a byte is read: a folder the caller may not write to, a name taken by a
    // folder, or a full quota.
    const { node: folder } = await locateTarget(this.meta, user, command.folderId, 'folderId')
    const target = { folderId: folder.id, filename, baseVersion }
    await this.#refuseEarly(folder.ownerId, target, size)
    const chunk = { index: 0, hash, size }
    if (size === 0) {
      await drainEmpty(body)
      return this.#commit(user, target, null, { kind: 'present' })
    }
    const received = await this.copies.accept(body, chunk)
    return this.#commit(user, target, chunk, received)
  }

  #checkHeaders(command: DirectUploadCommand): { size: number; hash: string } {
    const { contentLength: size, hash } = command
    if (!isChunkHash(hash)) throw invalid('X-Content-SHA256 must be the lowercase hex SHA-256 of the body')
    if (size === undefined) throw invalid('Content-Length is required: the body is the whole file')
    if (size > this.maxBytes) {
      throw new AppError(
        'PAYLOAD_TOO_LARGE',
        `files over ${this.maxBytes} bytes are uploaded in chunks: POST /upload/init`,
        { maxBytes: this.maxBytes },
      )
    }
    if (size === 0 && hash !== EMPTY_SHA256) {
      throw new AppError('HASH_MISMATCH', 'the body is empty, and its SHA-256 is not the one sent')
    }
    return { size, hash }
  }

  /**
   * What can be refused before a byte is read: a folder of that name, or a file that cannot fit
   * beside what the owner uses and what open sessions reserve. The transaction checks both
   * again, under the lock.
   */
  async #refuseEarly(ownerId: string, target: UploadTarget, size: number): Promise<void> {
    const existing = await this.meta.nodes.findLiveChild(target.folderId, target.filename)
    if (existing?.kind === 'folder') {
      throw new AppError('NAME_TAKEN', `a folder named "${target.filename}" exists here`)
    }
    // A new version is charged what it grows by; a conflicted copy, all of it.
    const grows = size - (replacedFile(existing, target.baseVersion)?.size ?? 0)
    await assertFits(this.meta, ownerId, grows, this.clock())
  }

  async #commit(
    user: User,
    target: UploadTarget,
    chunk: DeclaredChunk | null,
    received: Received,
  ): Promise<CompletedUpload> {
    let recorded: Recorded = {}
    try {
      for (let attempt = 1; ; attempt++) {
        try {
          const completed = await this.journal.transaction(user.id, async (tx, log) => {
            // The tree lock and the chunk guard first, as complete takes them.
            const { target: version, conflict, now } = await versionTarget(tx, user, target, this.clock)
            recorded = chunk ? await this.copies.record(tx, chunk, received) : {}
            const ownerId = version.kind === 'existing' ? version.file.ownerId : version.ownerId
            const replacedSize = version.kind === 'existing' ? version.file.size : 0
            // No lockAccounts: versionTarget holds the owner's tree lock, which is the same
            // account row an init's reservation locks, so the two cannot interleave.
            await assertFits(tx, ownerId, (chunk?.size ?? 0) - replacedSize, now)
            const chunks: ChunkRef[] = chunk ? [{ ...chunk, offset: 0 }] : []
            const content = {
              size: chunk?.size ?? 0,
              contentHash: contentHashOf(chunks.map((c) => c.hash)),
              chunks,
              authorId: user.id,
              at: now,
            }
            const file = await appendVersion(tx, this.history, version, content)
            log.record(file, version.kind === 'new' ? 'create' : 'update')
            return { file, conflict }
          })
          if (recorded.unused) await this.copies.discard(recorded.unused)
          return completed
        } catch (error) {
          const lostRace = error instanceof AppError && error.code === 'NAME_TAKEN'
          if (!lostRace || attempt >= ATTEMPTS) throw error
        }
      }
    } catch (error) {
      // Our copy is recorded nowhere, and its generation is ours alone: nobody else can need it.
      if (received.kind === 'copy') await this.copies.discard(received.copy)
      throw error
    }
  }
}

/**
 * The growth must fit beside what the owner uses and what the owner's open upload sessions hold:
 * a session's reservation is a promise that its complete will fit. Asked before the body is read
 * (through the store) and again in the transaction (under the owner's lock).
 */
async function assertFits(repos: Repositories, ownerId: string, grows: number, now: number): Promise<void> {
  if (grows <= 0) return
  const owner = await repos.users.findById(ownerId)
  if (!owner) throw new AppError('NOT_FOUND', 'the folder owner no longer exists')
  const reserved = await repos.uploads.reservedBytes(ownerId, now)
  if (owner.usedBytes + reserved + grows <= owner.quotaBytes) return
  const held = reserved > 0 ? ` (${reserved} bytes of it are held by open upload sessions)` : ''
  throw new AppError('QUOTA_EXCEEDED', `${grows} bytes do not fit in the remaining quota${held}`)
}

/** An empty file's body: checked to be empty all the same (a lying Content-Length cannot say 0 and send more). */
async function drainEmpty(body: Readable): Promise<void> {
  const verifying = new VerifyingStream({ expectedHash: EMPTY_SHA256, expectedSize: 0 })
  body.once('error', (error) => verifying.destroy(error))
  body.pipe(verifying).resume()
  await finished(verifying)
}

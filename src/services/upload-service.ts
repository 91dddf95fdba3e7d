import { createHash, randomBytes, timingSafeEqual } from 'node:crypto'
import type { Readable } from 'node:stream'
import { finished } from 'node:stream/promises'
import { setImmediate } from 'node:timers/promises'
import { type BlobKey, newGeneration } from '../domain/blob-key.js'
import { type PlannedChunk, planChunks } from '../domain/chunk-plan.js'
import type { Clock } from '../domain/clock.js'
import { conflictedCopyName } from '../domain/conflicted-name.js'
import { AppError, invalid } from '../domain/errors.js'
import { type ChunkHash, contentHashOf, isChunkHash } from '../domain/hashes.js'
import { isId, newId } from '../domain/ids.js'
import type {
  Millis,
  NodeRecord,
  QuotaReservation,
  UploadChunkRecord,
  UploadChunkState,
  UploadRecord,
  User,
} from '../domain/model.js'
import { normalizeName } from '../domain/names.js'
import type { BlobStore } from '../ports/blob-store.js'
import type { MetadataStore, Repositories } from '../ports/metadata-store.js'
import { crashPoint } from '../support/crash-points.js'
import { pausePoint } from '../support/pause-points.js'
import type { Sha256Pool } from '../support/sha256-pool.js'
import { locateLocked, locateTarget, mayWriteFolder } from './access.js'
import { appendVersion, type VersionTarget, versionMadeBy } from './append-version.js'
import type { ChangeJournal, ChangeLog } from './change-journal.js'
import type { ChunkIntegrity } from './chunk-integrity.js'
import { VerifyingStream } from './verifying-stream.js'
import type { VersionHistory } from './version-history.js'

/** Contract: proofNonce is 16 random bytes or more. */
const PROOF_NONCE_BYTES = 32
/** A complete that loses a race on PostgreSQL (a name or version taken meanwhile) is retried. */
const COMPLETE_ATTEMPTS = 3
/**
 * Chunks of a declaration classified and recorded per transaction (UploadService.#declare):
 * a few tens of milliseconds of work each, on SQLite as on PostgreSQL.
 */
const DECLARE_BATCH = 1_000
/**
 * A completed session answers a retried complete until it expires, and at least this long after
 * its completion, should that come just before its expiry.
 */
const COMPLETION_REMEMBERED_MS = 60 * 60_000
/** How long a session whose declaration is still being recorded lives, should init die halfway. */
const DECLARING_TTL_MS = 10 * 60_000
/**
 * Proofs one `prove` takes: each may make the server read a stored chunk (up to 16 MiB) for 64
 * bytes of request, so a request's work is bounded; a client with more to prove sends several.
 */
export const MAX_PROOFS_PER_REQUEST = 1_024

export interface UploadOptions {
  sessionTtlMs: number
  /** Sessions one user may have open at once (UPLOAD_MAX_OPEN_SESSIONS); one more is 429. */
  maxOpenSessions: number
  /** Every declared chunk but a file's last is at least this large (UPLOAD_MIN_CHUNK_BYTES). */
  minChunkBytes: number
}

export interface UploadInit {
  filename: unknown
  size: unknown
  folderId?: unknown
  chunkHashes: unknown
  chunkSizes?: unknown
  baseVersion?: unknown
}

/** What the client is told about its session (API.md, Upload). */
export interface UploadSessionView {
  uploadId: string
  chunkSize: number
  totalChunks: number
  chunksNeeded: number[]
  chunksExisting: number
  chunksToProve: number[]
  proofNonce: string
  expiresAt: Millis
}

export interface ChunkReceipt {
  index: number
  hash: ChunkHash
  deduplicated: boolean
}

export interface CompletedUpload {
  file: NodeRecord
  conflict: boolean
}

/** What a chunk PUT did with the bytes: checked them against a sound copy, or stored a copy. */
type Received = { kind: 'present' } | { kind: 'copy'; copy: BlobKey }

/** A copy that no row names once the PUT's row is recorded, to delete after the commit. */
interface Recorded {
  unused?: BlobKey
}

export class UploadService {
  constructor(
    private readonly meta: MetadataStore,
    private readonly journal: ChangeJournal,
    private readonly blobs: BlobStore,
    private readonly clock: Clock,
    private readonly history: VersionHistory,
    private readonly integrity: ChunkIntegrity,
    /** Proofs hash stored chunks here, off the event loop. */
    private readonly hashers: Sha256Pool,
    private readonly options: UploadOptions,
  ) {}

  async init(user: User, input: UploadInit): Promise<UploadSessionView> {
    const filename = normalizeName(input.filename)
    const plan = planChunks(input, { minChunkSize: this.options.minChunkBytes })
    const baseVersion = parseBaseVersion(input.baseVersion)
    // The caller's folder, or one shared with them as an editor: the file is the folder owner's,
    // and counts against the owner's quota.
    const { node: folder } = await locateTarget(this.meta, user, input.folderId, 'folderId')
    const existing = await this.meta.nodes.findLiveChild(folder.id, filename)
    if (existing?.kind === 'folder')
      throw new AppError('NAME_TAKEN', `a folder named "${filename}" exists here`)

    const now = this.clock()
    const upload: UploadRecord = {
      id: newId(),
      userId: user.id,
      folderId: folder.id,
      filename,
      size: plan.size,
      chunkSize: plan.chunkSize,
      totalChunks: plan.chunks.length,
      baseVersion,
      proofNonce: randomBytes(PROOF_NONCE_BYTES).toString('hex'),
      createdAt: now,
      expiresAt: now + this.options.sessionTtlMs,
      // The credit is settled in #reserve, under the owner's lock.
      reservation: { ownerId: folder.ownerId, bytes: plan.size, creditFileId: null },
    }
    const replaced = replacedFile(existing, baseVersion)
    const chunks = await this.#declare(user, upload, plan.chunks, replaced)
    return view(upload, chunks)
  }

  /**
   * Records the session and its chunk list, each chunk classified and recorded under the
   * chunk guard in one transaction: a chunk the collector claims meanwhile is seen as needed,
   * and one it has not claimed is protected by this session from then on. A long list goes in
   * bounded batches, one short transaction each, so that no declaration holds the guard (or
   * SQLite's single writer) long enough to stall other requests; until the last batch is in,
   * the session would expire soon, so one whose init died halfway does not linger.
   * The first transaction also takes the session's quota reservation (#reserve).
   */
  async #declare(
    user: User,
    upload: UploadRecord,
    planned: readonly PlannedChunk[],
    replaced: NodeRecord | null,
  ) {
    const batched = planned.length > DECLARE_BATCH
    const declaring = batched ? { ...upload, expiresAt: upload.createdAt + DECLARING_TTL_MS } : upload
    const chunks: UploadChunkRecord[] = []
    try {
      for (let start = 0; start === 0 || start < planned.length; start += DECLARE_BATCH) {
        const batch = planned.slice(start, start + DECLARE_BATCH)
        const recorded = await this.meta.transaction(async (tx) => {
          // The accounts first, the chunk guard second: the order complete takes them in.
          if (start === 0) await this.#reserve(tx, upload, replaced)
          await tx.chunks.guard('use')
          const states = await classify(tx, user.id, batch)
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

  /**
   * Checks, in the transaction that records the session, that its uploader may open one more
   * and that its reservation fits in the owner's quota beside what the owner uses and what the
   * owner's other open sessions hold. The accounts are locked first, so of two inits that would
   * not fit together the second counts the first's session. The reservation is released by the
   * session's end: complete (in the transaction that charges the file's real growth), abort, or
   * expiry (an expired session counts for nothing, swept or not).
   *
   * A session reserves every byte it declares, so that what all open sessions may bring in stays
   * within the quota; but one that replaces a file is credited that file's current size (it
   * replaces bytes the owner is charged for already), provided no other open session of the
   * owner counts on that file: a file covers one session at a time, or a user with one 8 MiB file
   * could open any number of 8 MiB sessions replacing it for nothing. Settled under the lock, so
   * of two inits replacing one file only one gets the credit.
   */
  async #reserve(tx: Repositories, upload: UploadRecord, replaced: NodeRecord | null): Promise<void> {
    const reservation = upload.reservation as QuotaReservation
    await tx.uploads.lockAccounts([upload.userId, reservation.ownerId])
    const open = await tx.uploads.openSessions(upload.userId, upload.createdAt)
    if (open.count >= this.options.maxOpenSessions) {
      const freedAt = open.firstExpiry ?? upload.createdAt
      throw new AppError(
        'TOO_MANY_UPLOADS',
        `${open.count} upload sessions are open already, the most one user may have: ` +
          'complete or abort one (DELETE /upload/:id) before starting another',
        { retryAfterSeconds: Math.max(1, Math.ceil((freedAt - upload.createdAt) / 1000)) },
      )
    }
    const owner = await tx.users.findById(reservation.ownerId)
    if (!owner) throw new AppError('UNAUTHORIZED', 'the account no longer exists')
    let credit = 0
    let creditTaken = false
    if (replaced) {
      creditTaken = await tx.uploads.creditTaken(owner.id, replaced.id, upload.createdAt)
      // Its size as of now, under the lock: a version completed since the lookup counts.
      const file = creditTaken ? null : await tx.nodes.findAnyState(replaced.id)
      if (file?.kind === 'file' && file.ownerId === owner.id) {
        reservation.creditFileId = file.id
        credit = Math.min(reservation.bytes, file.size)
      }
    }
    const holds = reservation.bytes - credit
    if (holds === 0) return
    const reserved = await tx.uploads.reservedBytes(owner.id, upload.createdAt)
    if (owner.usedBytes + reserved + holds > owner.quotaBytes) {
      const held = reserved > 0 ? ` (${reserved} bytes of it are held by open upload sessions)` : ''
      const replacing = creditTaken
        ? '; another open upload session replacing this file counts on its current size already'
        : ''
      throw new AppError(
        'QUOTA_EXCEEDED',
        `${upload.size} bytes do not fit in the remaining quota${held}${replacing}`,
      )
    }
  }

  /** The session as it stands now: chunks stored meanwhile by anyone are no longer needed. */
  async check(user: User, uploadId: string): Promise<UploadSessionView> {
    const upload = await this.#usableSession(user, uploadId)
    return view(upload, await this.refresh(user, upload))
  }

  /**
   * Receives one chunk's bytes. They are hashed while they stream to the blob store, which
   * keeps nothing unless the hash and length match; the chunk row is written only after the
   * bytes are durable.
   */
  async putChunk(
    user: User,
    uploadId: string,
    rawIndex: string,
    declaredHash: string | undefined,
    contentLength: number | undefined,
    body: Readable,
  ): Promise<ChunkReceipt> {
    const upload = await this.#usableSession(user, uploadId)
    const index = parseIndex(rawIndex, upload.totalChunks)
    const chunk = await this.meta.uploads.chunk(upload.id, index)
    if (!chunk) throw new AppError('INVALID_CHUNK_INDEX', `chunk index ${index} is out of range`)
    if (!isChunkHash(declaredHash))
      throw invalid('X-Chunk-Hash must be the lowercase hex SHA-256 of the chunk')
    if (declaredHash !== chunk.hash) {
      throw new AppError('HASH_MISMATCH', `chunk ${index} was declared at init with hash ${chunk.hash}`)
    }
    if (contentLength !== undefined && contentLength !== chunk.size) {
      throw new AppError('CHUNK_SIZE_MISMATCH', `chunk ${index} is ${chunk.size} bytes, not ${contentLength}`)
    }

    const verifying = new VerifyingStream({ expectedHash: chunk.hash, expectedSize: chunk.size })
    // A small body can arrive, and fail verification, before anyone reads the stream; the
    // stream keeps the error for `put` / `finished` below, so an early one must not crash.
    verifying.on('error', () => {})
    // Not stream.pipeline: it would start draining the verifying stream itself before the
    // blob store reads it. Errors of the body (the client went away) are forwarded by hand.
    body.once('error', (error) => verifying.destroy(error))
    body.once('close', () => {
      if (!body.readableEnded)
        verifying.destroy(new AppError('CLIENT_CLOSED_REQUEST', 'the upload was cut off'))
    })
    body.pipe(verifying)
    let received: Received
    try {
      received = await this.#receive(chunk, index, verifying)
    } catch (error) {
      // Stop storing, but let the client hear why: destroying an unfinished request would
      // reset the connection before the 400 goes out. The rest of the body is discarded
      // (and the error answer closes the connection, so a hostile body cannot go on forever).
      body.unpipe(verifying)
      verifying.destroy()
      body.resume()
      throw error
    }
    crashPoint('chunk.put.before-row')
    await pausePoint('chunk.put.before-row')
    // Only now that the bytes are durable may a row say so; one commit (one WAL sync) for both.
    let recorded: Recorded
    try {
      recorded = await this.meta.transaction(async (tx) => {
        await tx.chunks.guard('use')
        // The session is what kept the collector away from these bytes while they streamed in:
        // if it was aborted or expired meanwhile, they may be gone again, so nothing is recorded.
        if (!(await tx.uploads.find(user.id, upload.id, this.clock()))) throw uploadNotFound()
        const outcome =
          received.kind === 'copy' ? await this.#record(tx, received.copy, chunk.size, index) : {}
        if (received.kind === 'present' && (await tx.chunks.find(chunk.hash))?.state !== 'live') {
          throw chunkBusy(index)
        }
        await tx.uploads.setStateByHash(upload.id, [chunk.hash], 'ok')
        return outcome
      })
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

  /**
   * Reads the chunk's bytes through the verifying stream. A chunk already stored soundly is
   * only read and checked (uploading the bytes is how a client proves it has them); otherwise
   * the bytes go to a new copy under a generation of their own, never over an existing one.
   */
  async #receive(chunk: UploadChunkRecord, index: number, verifying: VerifyingStream): Promise<Received> {
    // The row, not the file, says whether the bytes are there to stay: a file may be an
    // orphan, or on its way out with the collector (then the client tries again shortly).
    const stored = await this.meta.chunks.find(chunk.hash)
    if (stored?.state === 'deleting') throw chunkBusy(index)
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

  /**
   * Makes a durable copy the chunk's bytes, in the caller's transaction: the first copy of a
   * new chunk, or the replacement of a damaged one. Answers the copy left unused, if any.
   */
  async #record(tx: Repositories, copy: BlobKey, size: number, index: number): Promise<Recorded> {
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

  /**
   * Proof of possession: HMAC-SHA256 of the stored bytes keyed by the session's nonce. A chunk's
   * stored bytes are read and hashed at most once per session, however many indexes name it and
   * however often a proof is sent again: what its proof must hash to is remembered with the
   * session, right or wrong as the proof sent was. The hashing runs on the worker pool.
   */
  async prove(user: User, uploadId: string, rawProofs: unknown): Promise<UploadSessionView> {
    const upload = await this.#usableSession(user, uploadId)
    const proofs = parseProofs(rawProofs, upload.totalChunks)
    const chunks = await this.refresh(user, upload)
    // Entries by chunk: one look at the stored bytes answers every index that names them.
    const claims = new Map<ChunkHash, { chunk: UploadChunkRecord; proofs: Map<string, number> }>()
    for (const [index, proof] of proofs) {
      const chunk = chunks[index] as UploadChunkRecord
      if (chunk.state === 'ok') continue
      if (chunk.state === 'needed') throw invalid(`chunk ${index} is not stored yet: upload it instead`)
      const claim = claims.get(chunk.hash) ?? { chunk, proofs: new Map() }
      if (!claim.proofs.has(proof)) claim.proofs.set(proof, index)
      claims.set(chunk.hash, claim)
    }
    const remembered = await this.meta.uploads.proofDigests(upload.id, [...claims.keys()])
    const key = Buffer.from(upload.proofNonce, 'hex')
    for (const [hash, { chunk, proofs }] of claims) {
      let expected = remembered.get(hash)
      if (expected === undefined) {
        expected = proofDigest(await this.hmacOfStored(chunk, key))
        await this.meta.uploads.rememberProof(upload.id, hash, expected)
      }
      for (const [proof, index] of proofs) {
        if (
          !timingSafeEqual(
            Buffer.from(proofDigest(Buffer.from(proof, 'hex')), 'hex'),
            Buffer.from(expected, 'hex'),
          )
        ) {
          throw new AppError('PROOF_INVALID', `the proof for chunk ${index} does not match its bytes`)
        }
      }
    }
    const provenHashes = [...claims.keys()]
    await this.meta.uploads.setStateByHash(upload.id, provenHashes, 'ok')
    const proven = new Set(provenHashes)
    for (const chunk of chunks) if (proven.has(chunk.hash)) chunk.state = 'ok'
    return view(upload, chunks)
  }

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
    await this.#assertMayStillWrite(user, upload)
    const chunks = await this.refresh(user, upload)
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
          this.commitVersion(tx, log, user, upload, chunks),
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

  async abort(user: User, uploadId: string): Promise<void> {
    const upload = await this.findUpload(user, uploadId)
    // A complete may have closed it meanwhile: then there is nothing to abort.
    if (!(await this.meta.uploads.delete(upload.id))) throw uploadNotFound()
  }

  /** Removes expired sessions; their chunks stay until the garbage collector decides. */
  sweepExpired(): Promise<number> {
    return this.meta.uploads.deleteExpired(this.clock())
  }

  private async commitVersion(
    tx: Repositories,
    log: ChangeLog,
    user: User,
    upload: UploadRecord,
    chunks: UploadChunkRecord[],
  ): Promise<CompletedUpload> {
    // Under the folder owner's tree lock: two completes of one name cannot both make version n+1.
    const { node: folder } = await locateLocked(tx, user, upload.folderId, 'write', 'folder').catch(
      (error: unknown) => {
        const gone = error instanceof AppError && error.code === 'NOT_FOUND'
        throw gone
          ? new AppError('NOT_FOUND', 'the target folder was deleted (or unshared) during the upload')
          : error
      },
    )
    await tx.chunks.guard('use')
    const now = this.clock()
    let existing = await tx.nodes.findLiveChild(folder.id, upload.filename)
    if (existing?.kind === 'folder')
      throw new AppError('NAME_TAKEN', `a folder named "${upload.filename}" exists here`)
    let name = upload.filename
    const conflict =
      existing !== null && upload.baseVersion !== null && existing.currentVersion !== upload.baseVersion
    if (conflict) {
      name = await freeConflictedName(tx, folder.id, upload.filename, new Date(now))
      existing = null
    }

    const contentHash = contentHashOf(chunks.map((chunk) => chunk.hash))
    const target: VersionTarget = existing
      ? { kind: 'existing', file: existing }
      : { kind: 'new', id: newId(), ownerId: folder.ownerId, parentId: folder.id, name }
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

  /**
   * Re-classifies the chunks not yet uploaded or proven in this session, since anyone may have
   * stored them meanwhile; and, should a chunk the session counted on be gone (it cannot be
   * while the session protects it, but a store may have been restored from a backup), it is
   * needed again rather than trusted.
   */
  private async refresh(user: User, upload: UploadRecord): Promise<UploadChunkRecord[]> {
    const chunks = await this.meta.uploads.chunks(upload.id)
    const states = await classify(this.meta, user.id, chunks)
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

  private async findUpload(user: User, uploadId: string): Promise<UploadRecord> {
    const upload = isId(uploadId) ? await this.meta.uploads.find(user.id, uploadId, this.clock()) : null
    if (!upload) throw uploadNotFound()
    return upload
  }

  /**
   * An open session of the caller's that they may still use: its target folder live, and theirs
   * or shared with them as an editor still (a member removed or made a viewer since, or a folder
   * trashed since, is 404 until that changes back). Abort needs only `findUpload`.
   */
  async #usableSession(user: User, uploadId: string): Promise<UploadRecord> {
    const upload = await this.findUpload(user, uploadId)
    await this.#assertMayStillWrite(user, upload)
    return upload
  }

  async #assertMayStillWrite(user: User, upload: UploadRecord): Promise<void> {
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
   * The HMAC of the chunk's stored bytes. They are hashed on the way too: a proof checked
   * against damaged bytes would fail a client that holds the right ones, so damage found here
   * is marked, and the client told to upload the chunk (which repairs it).
   */
  private async hmacOfStored(chunk: UploadChunkRecord, key: Buffer): Promise<Buffer> {
    const uploadInstead = invalid(`chunk ${chunk.index} is not stored soundly: upload it instead`)
    const stored = await this.meta.chunks.find(chunk.hash)
    const bytes = stored?.state === 'live' && !stored.damaged ? await this.blobs.get(stored) : null
    if (!stored || !bytes) {
      if (stored?.state === 'live' && !stored.damaged)
        await this.integrity.damaged(stored, 'upload', 'missing')
      throw uploadInstead
    }
    const hashing = this.hashers.stream({ hmacKey: key })
    for await (const piece of bytes) hashing.update(piece as Buffer)
    const { hex: actual, hmac } = await hashing.digest()
    if (actual !== chunk.hash) {
      await this.integrity.damaged(stored, 'upload', `reads as ${actual}`)
      throw uploadInstead
    }
    return Buffer.from(hmac as string, 'hex')
  }
}

function view(upload: UploadRecord, chunks: readonly UploadChunkRecord[]): UploadSessionView {
  return {
    uploadId: upload.id,
    chunkSize: upload.chunkSize,
    totalChunks: upload.totalChunks,
    chunksNeeded: chunks.filter((chunk) => chunk.state === 'needed').map((chunk) => chunk.index),
    chunksExisting: chunks.filter((chunk) => chunk.state !== 'needed').length,
    chunksToProve: chunks.filter((chunk) => chunk.state === 'prove').map((chunk) => chunk.index),
    proofNonce: upload.proofNonce,
    expiresAt: upload.expiresAt,
  }
}

/**
 * Which chunks need nothing (held, and already in a file the user can read), which need a
 * proof (held, but never shown to be the user's: the "Dropship" hole), and which are needed.
 */
async function classify(
  repos: Repositories,
  userId: string,
  chunks: readonly PlannedChunk[],
): Promise<Map<ChunkHash, UploadChunkState>> {
  const distinct = [...new Set(chunks.map((chunk) => chunk.hash))]
  const stored = await repos.chunks.sound(distinct)
  // A chunk's size is a fact of its bytes: a declaration that says otherwise would make a file
  // whose size, quota charge and ETag describe bytes that do not exist.
  for (const chunk of chunks) {
    const size = stored.get(chunk.hash)
    if (size !== undefined && size !== chunk.size) {
      throw new AppError(
        'CHUNK_SIZE_MISMATCH',
        `chunk ${chunk.index} is declared ${chunk.size} bytes, but the chunk with its hash has ${size}`,
        { index: chunk.index },
      )
    }
  }
  const readable =
    stored.size === 0 ? new Set<ChunkHash>() : await repos.chunks.readableBy(userId, [...stored.keys()])
  const states = new Map<ChunkHash, UploadChunkState>()
  for (const hash of distinct) {
    states.set(hash, !stored.has(hash) ? 'needed' : readable.has(hash) ? 'ok' : 'prove')
  }
  return states
}

/**
 * The file a session would replace were it completed now, as `commitVersion` decides it: the
 * live file of its name, unless its base version is out of date (then it would be kept as a
 * conflicted copy, and replaces nothing).
 */
function replacedFile(existing: NodeRecord | null, baseVersion: number | null): NodeRecord | null {
  const replaces =
    existing?.kind === 'file' && (baseVersion === null || existing.currentVersion === baseVersion)
  return replaces ? existing : null
}

/**
 * The proofs of a `prove` body as [index, proof] pairs. Each index once, written plainly ("7",
 * never "07"), so there are never more entries than the session has chunks; and at most
 * MAX_PROOFS_PER_REQUEST of them.
 */
function parseProofs(proofs: unknown, totalChunks: number): [number, string][] {
  if (typeof proofs !== 'object' || proofs === null || Array.isArray(proofs)) {
    throw invalid('proofs must be an object of "<index>": "<hex HMAC-SHA256>"')
  }
  const entries = Object.entries(proofs)
  if (entries.length > MAX_PROOFS_PER_REQUEST) {
    throw new AppError(
      'PAYLOAD_TOO_LARGE',
      `at most ${MAX_PROOFS_PER_REQUEST} proofs per request (${entries.length} were sent): send the rest in another`,
    )
  }
  return entries.map(([rawIndex, proof]) => {
    const index = parseIndex(rawIndex, totalChunks)
    if (String(index) !== rawIndex) throw invalid(`proofs["${rawIndex}"]: write the index as ${index}`)
    if (typeof proof !== 'string' || !/^[0-9a-f]{64}$/.test(proof)) {
      throw invalid(`proofs["${rawIndex}"] must be a lowercase hex HMAC-SHA256`)
    }
    return [index, proof]
  })
}

/** What a proof is compared by: its SHA-256, which is also what a session remembers. */
const proofDigest = (hmac: Buffer): string => createHash('sha256').update(hmac).digest('hex')

/** The session was completed, aborted or expired by another request while this complete ran. */
class SessionClosed extends Error {}

const uploadNotFound = (): AppError =>
  new AppError('UPLOAD_NOT_FOUND', 'no such upload session, or it has expired')

const chunkBusy = (index: number): AppError =>
  new AppError(
    'CHUNK_BUSY',
    `chunk ${index} is being removed from storage this moment: send it again shortly`,
  )

function parseIndex(raw: string, totalChunks: number): number {
  const index = /^\d{1,9}$/.test(raw) ? Number(raw) : Number.NaN
  if (!Number.isInteger(index) || index >= totalChunks) {
    throw new AppError('INVALID_CHUNK_INDEX', `chunk index must be an integer from 0 to ${totalChunks - 1}`)
  }
  return index
}

function parseBaseVersion(raw: unknown): number | null {
  if (raw === undefined || raw === null) return null
  if (typeof raw !== 'number' || !Number.isSafeInteger(raw) || raw < 1) {
    throw invalid('baseVersion must be a positive integer')
  }
  return raw
}

async function freeConflictedName(
  tx: Repositories,
  folderId: string,
  filename: string,
  at: Date,
): Promise<string> {
  for (let attempt = 1; ; attempt++) {
    const candidate = conflictedCopyName(filename, at, attempt)
    if (!(await tx.nodes.findLiveChild(folderId, candidate))) return candidate
  }
}

import { DEFAULT_CHUNK_SIZE } from '../../domain/chunk-plan.js'
import type { Clock } from '../../domain/clock.js'
import type { User } from '../../domain/model.js'
import type { BlobStore } from '../../ports/blob-store.js'
import type { MetadataStore } from '../../ports/metadata-store.js'
import type { Sha256Pool } from '../../support/sha256-pool.js'
import type { ChangeJournal } from '../change-journal.js'
import type { ChunkIntegrity } from '../chunk-integrity.js'
import type { VersionHistory } from '../version-history.js'
import { ChunkCopies } from './chunk-copies.js'
import { type ChunkReceipt, ChunkReceiver, type ChunkUpload } from './chunk-receipt.js'
import { type CompletedUpload, UploadCommit } from './commit.js'
import type { UploadDeclaration } from './declaration.js'
import { DirectUpload, type DirectUploadCommand } from './direct-upload.js'
import { OpenSessions } from './open-sessions.js'
import { ProofOfPossession } from './proof-of-possession.js'
import type { ProofClaims } from './proofs.js'
import { SessionLifecycle, type UploadOptions } from './session-lifecycle.js'
import type { UploadSessionView } from './session-view.js'

export type { ChunkReceipt, ChunkUpload } from './chunk-receipt.js'
export type { CompletedUpload } from './commit.js'
export type { UploadDeclaration } from './declaration.js'
export type { DirectUploadCommand } from './direct-upload.js'
export { MAX_PROOFS_PER_REQUEST, type ProofClaims } from './proofs.js'
export type { UploadOptions } from './session-lifecycle.js'
export type { UploadSessionView } from './session-view.js'

/** The stores and services an upload works with. */
export interface UploadDependencies {
  meta: MetadataStore
  journal: ChangeJournal
  blobs: BlobStore
  clock: Clock
  history: VersionHistory
  integrity: ChunkIntegrity
  /** Proofs hash stored chunks here, off the event loop. */
  hashers: Sha256Pool
}

/**
 * The upload use cases as one object, for the routes, the sweep and the tests: a session's
 * lifecycle (session-lifecycle.ts), its chunks' receipt (chunk-receipt.ts), proofs of
 * possession (proof-of-possession.ts) and the commit of its version (commit.ts); and a small
 * file in one request (direct-upload.ts).
 */
export class UploadService {
  readonly #lifecycle: SessionLifecycle
  readonly #chunks: ChunkReceiver
  readonly #proofs: ProofOfPossession
  readonly #commit: UploadCommit
  readonly #direct: DirectUpload

  constructor(deps: UploadDependencies, options: UploadOptions) {
    const { meta, journal, blobs, clock, history, integrity, hashers } = deps
    const sessions = new OpenSessions(meta, clock)
    this.#lifecycle = new SessionLifecycle(meta, clock, sessions, options)
    const copies = new ChunkCopies(meta, blobs, clock, integrity)
    this.#chunks = new ChunkReceiver(meta, clock, copies, sessions)
    this.#proofs = new ProofOfPossession(meta, blobs, integrity, hashers, sessions)
    this.#commit = new UploadCommit(meta, journal, clock, history, sessions)
    this.#direct = new DirectUpload(meta, journal, clock, history, copies, DEFAULT_CHUNK_SIZE)
  }

  /** Opens a session for a declared file, reserving its bytes in the folder owner's quota. */
  init(user: User, declaration: UploadDeclaration): Promise<UploadSessionView> {
    return this.#lifecycle.init(user, declaration)
  }

  check(user: User, uploadId: string): Promise<UploadSessionView> {
    return this.#lifecycle.check(user, uploadId)
  }

  putChunk(upload: ChunkUpload): Promise<ChunkReceipt> {
    return this.#chunks.put(upload)
  }

  prove(user: User, uploadId: string, proofs: ProofClaims): Promise<UploadSessionView> {
    return this.#proofs.prove(user, uploadId, proofs)
  }

  complete(user: User, uploadId: string): Promise<CompletedUpload> {
    return this.#commit.complete(user, uploadId)
  }

  /** A whole file of at most one chunk in one request: no session, one transaction. */
  putFile(command: DirectUploadCommand): Promise<CompletedUpload> {
    return this.#direct.put(command)
  }

  abort(user: User, uploadId: string): Promise<void> {
    return this.#lifecycle.abort(user, uploadId)
  }

  sweepExpired(): Promise<number> {
    return this.#lifecycle.sweepExpired()
  }
}

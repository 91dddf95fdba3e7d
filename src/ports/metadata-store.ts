import type { ChunkHash } from '../domain/hashes.js'
import type {
  AuthSession,
  ChunkRef,
  Millis,
  NodeKind,
  NodeRecord,
  UploadChunkRecord,
  UploadChunkState,
  UploadRecord,
  User,
  VersionRecord,
} from '../domain/model.js'

/**
 * Where users, folders, files, versions, chunks and upload sessions are recorded.
 * Implemented once with Kysely for SQLite and PostgreSQL (adapters/sql).
 *
 * Every method of the repositories runs on its own (auto-commit) when called on the store,
 * or inside the surrounding transaction when called on the `tx` handed to `transaction`.
 * Uniqueness is enforced by the database, never by a read-then-write in the caller, so two
 * API nodes racing each other still cannot create two siblings of the same name.
 */
export interface MetadataStore extends Repositories {
  /**
   * Runs `work` in one transaction: commits when it resolves, rolls back when it throws
   * (and rethrows). Nothing written inside is visible to others before the commit.
   */
  transaction<T>(work: (tx: Repositories) => Promise<T>): Promise<T>
  /** Resolves when the database answers a trivial query; for /readyz. */
  ping(): Promise<void>
  close(): Promise<void>
}

export interface Repositories {
  users: UserRepository
  sessions: SessionRepository
  nodes: NodeRepository
  versions: VersionRepository
  chunks: ChunkRepository
  uploads: UploadRepository
}

export interface UserRepository {
  /** Throws AppError EMAIL_TAKEN when the (normalised) email exists. */
  insert(user: User): Promise<void>
  findById(id: string): Promise<User | null>
  findByEmail(email: string): Promise<User | null>
  /**
   * Adds `delta` (may be negative) to usedBytes. With `enforceQuota`, only when the result
   * stays within quotaBytes; answers false (and changes nothing) when it would not.
   * A single conditional UPDATE, so concurrent uploads cannot overrun the quota together.
   */
  addUsedBytes(userId: string, delta: number, enforceQuota: boolean): Promise<boolean>
  /**
   * Takes a lock that serialises structural changes (moves) of one user's tree for the rest
   * of the transaction (PostgreSQL: SELECT ... FOR UPDATE on the user row; SQLite writers
   * are serialised already). Only meaningful inside `transaction`.
   */
  lockTree(userId: string): Promise<void>
}

export interface SessionRepository {
  insert(session: AuthSession): Promise<void>
  /** Null when unknown or expired at `now`. */
  find(tokenHash: string, now: Millis): Promise<AuthSession | null>
  /** The user of a session that is known and unexpired at `now`, in one round trip; else null. */
  findUser(tokenHash: string, now: Millis): Promise<{ user: User; expiresAt: Millis } | null>
  delete(tokenHash: string): Promise<void>
  /** Removes sessions expired at `now`; answers how many. */
  deleteExpired(now: Millis): Promise<number>
}

export interface ChildrenPage {
  /** Position after which to continue: the last item of the previous page. */
  after?: { kind: NodeKind; name: string }
  limit: number
}

export interface NodeRepository {
  /** Throws AppError NAME_TAKEN when a live sibling has the same name. */
  insert(node: NodeRecord): Promise<void>
  /** A live (not trashed) node of this owner, or null: another owner's id is null too. */
  findLive(ownerId: string, id: string): Promise<NodeRecord | null>
  /** The live child of `parentId` with exactly this (NFC) name. */
  findLiveChild(parentId: string, name: string): Promise<NodeRecord | null>
  /** Live children, folders first, then by name (binary order), after `page.after`. */
  listLiveChildren(parentId: string, page: ChildrenPage): Promise<NodeRecord[]>
  /** The node and its ancestors up to the root, nearest first (the node itself is [0]). */
  lineage(id: string): Promise<NodeRecord[]>
  /** Renames and/or moves; throws AppError NAME_TAKEN on a live sibling name clash. */
  update(id: string, patch: { name?: string; parentId?: string; updatedAt: Millis }): Promise<void>
  /** Sets a file's current version fields (after a new version is inserted). */
  setCurrentVersion(
    id: string,
    current: { version: number; size: number; contentHash: string; updatedAt: Millis },
  ): Promise<void>
  /**
   * Moves the node and every live node below it to the trash in one statement, recording
   * `id` as their trash root. Answers the total size of the files trashed.
   */
  trashSubtree(id: string, deletedAt: Millis): Promise<{ nodes: number; fileBytes: number }>
}

export interface VersionRepository {
  /** Inserts a version with its ordered chunk list. */
  insert(version: VersionRecord, chunks: readonly ChunkRef[]): Promise<void>
  find(nodeId: string, version: number): Promise<VersionRecord | null>
  /** Chunks of a version in order, starting with the one that contains byte `fromOffset`. */
  chunks(versionId: string, fromOffset?: number): Promise<ChunkRef[]>
}

export interface ChunkRepository {
  /** Of these hashes, the ones whose bytes are durably stored (a chunk row exists). */
  stored(hashes: readonly ChunkHash[]): Promise<Set<ChunkHash>>
  /**
   * Of these hashes, the ones that some version of a non-purged file owned by `userId`
   * references: chunks the user has shown to hold before, which need no proof.
   */
  readableBy(userId: string, hashes: readonly ChunkHash[]): Promise<Set<ChunkHash>>
  /**
   * Records that the bytes of `hash` are durable. Idempotent: answers true when this call
   * created the row, false when it existed.
   */
  insert(hash: ChunkHash, size: number, createdAt: Millis): Promise<boolean>
  /** Adds to reference counts, one entry per distinct hash. */
  addReferences(counts: ReadonlyMap<ChunkHash, number>): Promise<void>
  find(hash: ChunkHash): Promise<{ hash: ChunkHash; size: number; refCount: number } | null>
}

export interface UploadRepository {
  insert(upload: UploadRecord, chunks: readonly UploadChunkRecord[]): Promise<void>
  /** The caller's session if it exists and has not expired at `now`; another user's is null. */
  find(userId: string, id: string, now: Millis): Promise<UploadRecord | null>
  chunks(uploadId: string): Promise<UploadChunkRecord[]>
  /** One chunk of the list (a chunk PUT must not read the 2,560 rows of a 10 GiB file). */
  chunk(uploadId: string, index: number): Promise<UploadChunkRecord | null>
  /** Sets the state of every chunk of the upload whose hash is `hash`. */
  setStateByHash(uploadId: string, hash: ChunkHash, state: UploadChunkState): Promise<void>
  /** Sets the state of the given indexes. */
  setStateByIndex(uploadId: string, indexes: readonly number[], state: UploadChunkState): Promise<void>
  /** Deletes a session and its chunk list. */
  delete(id: string): Promise<void>
  /** Deletes sessions expired at `now` with their chunk lists; answers how many. */
  deleteExpired(now: Millis): Promise<number>
}

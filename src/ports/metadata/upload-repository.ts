import type { ChunkHash } from '../../domain/hashes.js'
import type { Millis, UploadChunkRecord, UploadChunkState, UploadRecord } from '../../domain/model.js'

/** What a completed upload session made (UploadRepository.completion). */
export interface UploadCompletion {
  fileId: string
  /** The version it made, and that version's content hash. */
  version: number
  contentHash: string
  /** The upload was kept as a conflicted copy. */
  conflict: boolean
}

export interface UploadRepository {
  /** Records a session with its chunk list, or the first part of it (see addChunks). */
  insert(upload: UploadRecord, chunks: readonly UploadChunkRecord[]): Promise<void>
  /** Adds to a session's chunk list: a large declaration is recorded in bounded batches. */
  addChunks(uploadId: string, chunks: readonly UploadChunkRecord[]): Promise<void>
  /** Moves the expiry of an open session; answers false when there is no such open session. */
  setExpiry(uploadId: string, expiresAt: Millis): Promise<boolean>
  /**
   * The caller's session if it is open (not completed) and has not expired at `now`; another
   * user's is null.
   */
  find(userId: string, id: string, now: Millis): Promise<UploadRecord | null>
  /**
   * What the caller's session made (and the size it declared), if it was completed and has not
   * expired at `now`.
   */
  completion(userId: string, id: string, now: Millis): Promise<(UploadCompletion & { size: number }) | null>
  /**
   * Completes an open, unexpired session, in the caller's transaction: records what it made
   * and drops its chunk list; it is then kept at least until `rememberUntil` (if given) for a
   * retried complete to find. One conditional UPDATE: answers false, changing nothing, when the
   * session is no longer open (a concurrent complete won, or it was aborted or expired), so
   * exactly one complete of a session ever succeeds.
   */
  markCompleted(
    id: string,
    completion: UploadCompletion,
    now: Millis,
    rememberUntil?: Millis,
  ): Promise<boolean>
  chunks(uploadId: string): Promise<UploadChunkRecord[]>
  /** One chunk of the list (a chunk PUT must not read the 2,560 rows of a 10 GiB file). */
  chunk(uploadId: string, index: number): Promise<UploadChunkRecord | null>
  /** Sets the state of every chunk of the upload whose hash is one of `hashes`. */
  setStateByHash(uploadId: string, hashes: readonly ChunkHash[], state: UploadChunkState): Promise<void>
  /**
   * Makes inits that count against these accounts (the owner charged, the uploader capped) wait
   * for one another until the transaction ends: each then counts the sessions the others
   * recorded. Inside `transaction` only, before anything else is read. An UPDATE of each user
   * row, in id order (an UPDATE, not FOR UPDATE: under REPEATABLE READ on PostgreSQL the second
   * then fails and is retried instead of counting from a snapshot taken before the first committed).
   */
  lockAccounts(userIds: readonly string[]): Promise<void>
  /**
   * Bytes of `ownerId`'s quota held by sessions open (not completed) and unexpired at `now`
   * whose target folder still exists (live or in the trash; a purged one's sessions can never
   * complete): what each reserved, less the current size of its credit file while that exists
   * (never below nothing).
   */
  reservedBytes(ownerId: string, now: Millis): Promise<number>
  /**
   * The open, unexpired sessions `userId` opened into `ownerId`'s files (at most
   * UPLOAD_MAX_OPEN_SESSIONS): which may end when the user loses access to a folder of the owner.
   */
  openInto(userId: string, ownerId: string, now: Millis): Promise<{ id: string; folderId: string }[]>
  /** Whether an open, unexpired session of `ownerId` counts on the size of file `fileId`. */
  creditTaken(ownerId: string, fileId: string, now: Millis): Promise<boolean>
  /** The sessions `userId` opened that are open and unexpired at `now`: how many, and the first expiry. */
  openSessions(userId: string, now: Millis): Promise<{ count: number; firstExpiry: Millis | null }>
  /**
   * The proof digests remembered for these chunks of the session (see `rememberProof`): what
   * a proof of the chunk must hash to.
   */
  proofDigests(uploadId: string, hashes: readonly ChunkHash[]): Promise<Map<ChunkHash, string>>
  /** Remembers, for every chunk of the session with this hash, what a proof of it must hash to. */
  rememberProof(uploadId: string, hash: ChunkHash, digest: string): Promise<void>
  /**
   * Deletes an open session and its chunk list; answers whether there was one. Chunks of the
   * list that no version has ever named become collectable at the collector's next run, unless
   * another session names them then.
   */
  delete(id: string): Promise<boolean>
  /**
   * Deletes sessions expired at `now`, open or completed, with their chunk lists; answers how
   * many. Their chunks become collectable as `delete` makes them.
   */
  deleteExpired(now: Millis): Promise<number>
}

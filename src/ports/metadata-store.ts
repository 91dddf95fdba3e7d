import type { BlobKey } from '../domain/blob-key.js'
import type { ChunkHash } from '../domain/hashes.js'
import type { JournalEntry, NewChange } from '../domain/journal.js'
import type {
  AuthSession,
  ChunkRecord,
  ChunkRef,
  FolderMember,
  MemberRole,
  Millis,
  NodeKind,
  NodeRecord,
  ShareLink,
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
   * (and rethrows). Nothing written inside is visible to others before the commit. A
   * transaction the database aborts as a deadlock or serialization failure is run again
   * (a few times), so `work` must not act outside the transaction.
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
  collector: CollectorRepository
  audit: AuditRepository
  journal: JournalRepository
  sharing: SharingRepository
  settings: SettingRepository
  leases: LeaseRepository
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

/** A node of a lineage, with the role a given user has as a member of it (null: none). */
export interface LineageStep {
  node: NodeRecord
  memberRole: MemberRole | null
}

export interface NodeRepository {
  /** Throws AppError NAME_TAKEN when a live sibling has the same name, or one that differs only in case. */
  insert(node: NodeRecord): Promise<void>
  /** A live (not trashed) node of this owner, or null: another owner's id is null too. */
  findLive(ownerId: string, id: string): Promise<NodeRecord | null>
  /**
   * A node by id whoever owns it, live or trashed. For background jobs only: a request
   * always goes through `findLive` with the caller's id.
   */
  findAnyState(id: string): Promise<NodeRecord | null>
  /**
   * The live child of `parentId` whose name is this one under `nameKey` (the same but for
   * case): the one a new sibling of that name would clash with.
   */
  findLiveChild(parentId: string, name: string): Promise<NodeRecord | null>
  /** Live children, folders first, then by name (binary order), after `page.after`. */
  listLiveChildren(parentId: string, page: ChildrenPage): Promise<NodeRecord[]>
  /** The node and its ancestors up to the root, nearest first (the node itself is [0]). */
  lineage(id: string): Promise<NodeRecord[]>
  /**
   * `lineage`, each node with `userId`'s membership role of it (null when none), in one query:
   * for access checks on a hot path (services/access.ts, `mayWriteFolder`).
   */
  lineageWithRoles(userId: string, id: string): Promise<LineageStep[]>
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
  /** A node of this owner that the owner deleted itself (the top of a deleted tree), or null. */
  findTrashRoot(ownerId: string, id: string): Promise<NodeRecord | null>
  /** The owner's trash roots, most recently deleted first, after `page.after`. */
  listTrash(ownerId: string, page: TrashPage): Promise<TrashEntry[]>
  /** Trash roots of any owner deleted at or before `cutoff`, oldest first. */
  trashDeletedBefore(cutoff: Millis, limit: number): Promise<NodeRecord[]>
  /**
   * Brings back every node that went to the trash with `rootId`, placing the root under
   * `parentId` as `name`. Throws AppError NAME_TAKEN when a live sibling has that name.
   */
  restoreTrash(
    rootId: string,
    placement: { parentId: string; name: string; updatedAt: Millis },
  ): Promise<void>
  /** The node and every node below it, trashed or not (what a purge removes). */
  subtree(id: string): Promise<NodeRecord[]>
  /** Deletes these nodes (whole subtrees, with their versions already gone). */
  deleteMany(ids: readonly string[]): Promise<void>
}

export interface TrashPage {
  after?: { deletedAt: Millis; id: string }
  limit: number
}

export interface TrashEntry {
  node: NodeRecord
  /** Bytes of the files that went to the trash with it (itself, for a file). */
  bytes: number
}

export interface VersionRepository {
  /** Inserts a version with its ordered chunk list. */
  insert(version: VersionRecord, chunks: readonly ChunkRef[]): Promise<void>
  find(nodeId: string, version: number): Promise<VersionRecord | null>
  /** Chunks of a version in order, starting with the one that contains byte `fromOffset`. */
  chunks(versionId: string, fromOffset?: number): Promise<ChunkRef[]>
  /**
   * A version and, read in the same statement (so in one snapshot: a version pruned meanwhile
   * is either wholly there or not at all), its chunks from the one containing byte
   * `fromOffset` to the one containing byte `toOffset` (the last, when not given), each with the
   * copy that holds its bytes. Null when there is no such version.
   */
  readPlan(nodeId: string, version: number, fromOffset: number, toOffset?: number): Promise<ReadPlan | null>
  /** Every version of a file, newest first. */
  list(nodeId: string): Promise<VersionRecord[]>
  /** The ids of every version of these files. */
  idsOf(nodeIds: readonly string[]): Promise<string[]>
  /**
   * Deletes these versions with their chunk lists and answers how many entries each chunk
   * lost, for the caller to drop from the reference counts in the same transaction.
   */
  delete(versionIds: readonly string[]): Promise<Map<ChunkHash, number>>
  /**
   * Records when the retention policy may next drop one of the file's versions (null: never),
   * in the transaction that pruned it, so that the sweep visits only files that are due.
   */
  setHistoryDue(nodeId: string, dueAt: Millis | null): Promise<void>
  /**
   * Files due at `now` (due time at or before it), oldest due first, after `after` in that
   * order; on an index that holds only files with a due time, so the cost follows what is due.
   */
  historyDue(now: Millis, after: HistoryDue | null, limit: number): Promise<HistoryDue[]>
  /**
   * Makes every file with more than one version due at `now`, in one statement (the policy
   * changed, so every due time computed under the old one is stale). Answers how many.
   */
  markAllHistoryDue(now: Millis): Promise<number>
}

/** A file whose history the sweep should look at, and since when. */
export interface HistoryDue {
  nodeId: string
  dueAt: Millis
}

/** A version with the chunks a download reads (VersionRepository.readPlan). */
export interface ReadPlan {
  version: VersionRecord
  chunks: ChunkCopy[]
}

/** A chunk of a version as a download reads it: where its bytes are, and whether they are sound. */
export interface ChunkCopy extends ChunkRef {
  /** The copy that holds the bytes; null when no live row names the chunk (corruption). */
  generation: string | null
  /** Found wrong or missing before (ChunkRecord.damaged). */
  damaged: boolean
}

export interface ChunkRepository {
  /**
   * Of these hashes, the chunks that may be deduplicated against, with their sizes: a live row
   * (the bytes are durable) that is not damaged.
   */
  sound(hashes: readonly ChunkHash[]): Promise<Map<ChunkHash, number>>
  /**
   * Of these hashes, the ones that some version of a non-purged file owned by `userId`
   * references: chunks the user has shown to hold before, which need no proof.
   */
  readableBy(userId: string, hashes: readonly ChunkHash[]): Promise<Set<ChunkHash>>
  /**
   * Records that a copy holding the bytes of `hash` is durable. Idempotent: answers true when
   * this call created the row, false when a row existed (then the caller's copy is not the
   * chunk's, and the caller removes it).
   */
  insert(chunk: BlobKey & { size: number }, createdAt: Millis): Promise<boolean>
  /**
   * Makes the copy `to` the chunk's bytes in place of the damaged copy `from`, clearing the
   * damage. Answers false, changing nothing, unless the row is live, damaged and names `from`
   * (a concurrent repair won, or the collector claimed the chunk).
   */
  replaceDamaged(hash: ChunkHash, from: string, to: string, now: Millis): Promise<boolean>
  /**
   * Marks the chunk damaged when `key` is still its live, sound copy; answers whether this call
   * marked it (false for a copy replaced or collected meanwhile: not the chunk's fault).
   */
  markDamaged(key: BlobKey, now: Millis): Promise<boolean>
  /**
   * Adds to reference counts, one entry per distinct hash, and clears their collector marks.
   * Only live chunks can be referenced: when one of them is not (the collector claimed it),
   * throws AppError CHUNKS_MISSING and the transaction rolls back.
   *
   * Inside `transaction`, reference changes are gathered and applied when the work is done,
   * in one pass over the rows in hash order (so transactions sharing chunks never deadlock):
   * the error then comes from `transaction` itself. Outside one, at once.
   */
  addReferences(counts: ReadonlyMap<ChunkHash, number>): Promise<void>
  /** Subtracts from reference counts (the entries of deleted versions); applied as addReferences is. */
  dropReferences(counts: ReadonlyMap<ChunkHash, number>): Promise<void>
  find(hash: ChunkHash): Promise<ChunkRecord | null>
  /**
   * Orders the transactions that make chunks needed (creating an upload session, recording a
   * chunk for one, completing one) against the collector's claims, for the rest of the
   * transaction: `use` is shared, `collect` exclusive. A claim then sees every session that
   * committed before it, and a session created after it sees the claim. (PostgreSQL: an
   * advisory transaction lock, because its statements read a snapshot that may miss a session
   * committed a moment before; SQLite serialises writers already.)
   */
  guard(mode: 'use' | 'collect'): Promise<void>
}

/** The garbage collector's queries (services/garbage-collector.ts explains the protocol). */
export interface CollectorRepository {
  /** Marks live unreferenced chunks that are not marked yet; answers how many. */
  mark(now: Millis): Promise<number>
  /** How many unreferenced chunks a mark would mark now (for a dry run). */
  countUnmarked(): Promise<number>
  /**
   * Claims (live -> deleting) up to `limit` chunks that are still unreferenced, were marked at
   * or before `markedBefore`, and are named by no upload session; a conditional UPDATE, so a
   * chunk referenced again meanwhile is left alone. Answers what it claimed. Call with the
   * `collect` guard held.
   */
  claim(markedBefore: Millis, now: Millis, limit: number): Promise<ChunkRecord[]>
  /** What `claim` would take, without taking it (for a dry run). */
  claimable(markedBefore: Millis, limit: number): Promise<ChunkRecord[]>
  /**
   * Claims left by a collector that stopped (crashed) before finishing them: `deleting` rows
   * claimed at or before `claimedBefore`. Re-stamps them with `now`, so that two collectors
   * cannot both take one over.
   */
  takeOverStale(claimedBefore: Millis, now: Millis, limit: number): Promise<ChunkRecord[]>
  /**
   * Removes the rows of claimed chunks whose copies are gone: only rows still `deleting` and
   * still naming that copy, so a late call can never remove a chunk stored again since.
   * Answers the copies whose rows this call removed (another collector may have been first).
   */
  forget(copies: readonly BlobKey[]): Promise<BlobKey[]>
  /** The generation the row of each of these hashes names, in any state (no row: absent). */
  generations(hashes: readonly ChunkHash[]): Promise<Map<ChunkHash, string>>
  /**
   * Of these stored copies, the orphans: copies no row names (left by a crash between writing
   * bytes and recording them, or by the loser of two puts of one chunk) whose hash no upload
   * session names either. Nothing can ever come to name such a copy (an upload records its copy
   * only while its session exists), so they may be deleted. Call with the `collect` guard held.
   */
  orphans(copies: readonly BlobKey[]): Promise<BlobKey[]>
}

/** Scrub's queries: which chunks to check, and whether counts and references add up. */
export interface AuditRepository {
  /** Live chunks, least recently verified first. */
  leastRecentlyVerified(limit: number): Promise<ChunkRecord[]>
  /** Live chunks in hash order after `afterHash` (a full pass). */
  liveChunks(afterHash: ChunkHash | null, limit: number): Promise<ChunkRecord[]>
  markVerified(hashes: readonly ChunkHash[], now: Millis): Promise<void>
  countLive(): Promise<number>
  /** Live chunks marked damaged and not repaired yet. */
  countDamaged(): Promise<number>
  /**
   * Versions whose sizes disagree: with a chunk whose stored size differs from the size the
   * version declares for it, or whose chunks do not add up to the version's size.
   */
  sizeMismatches(): Promise<{ nodeId: string; version: number; problem: string }[]>
  /** Chunks whose stored count differs from a recount of the version entries naming them. */
  refCountMismatches(): Promise<{ hash: ChunkHash; refCount: number; actual: number }[]>
  /** Hashes that some version names but that have no live row. */
  danglingReferences(): Promise<ChunkHash[]>
}

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

/** A change for one user's journal. */
export interface JournalItem {
  userId: string
  change: NewChange
}

/** The change journal (API.md, Sync; migration 0004 explains the positions). */
export interface JournalRepository {
  /**
   * Appends the items to their users' journals in the caller's transaction, each user's in the
   * order given, and answers the entries with their positions. Takes the users' journal heads
   * in id order (row locks until commit on PostgreSQL), so that one user's entries commit in
   * position order and two transactions fanning out to the same users never deadlock. Call it
   * once per transaction, at its end, so the heads are held as briefly as possible.
   */
  append(items: readonly JournalItem[]): Promise<JournalEntry[]>
  /** The user's entries after position `after`, oldest first, at most `limit`. */
  after(userId: string, after: number, limit: number): Promise<JournalEntry[]>
  /**
   * The user's last position handed out (`head`) and the last one compacted away (`floor`):
   * every entry in (floor, head] is there. Both 0 for a journal never written.
   */
  bounds(userId: string): Promise<{ head: number; floor: number }>
  /**
   * Compacts up to `userLimit` journals: drops each one's entries up to its last one older
   * than `before`, and all but its newest `maxEntries`, raising its floor to match (in one
   * transaction per journal). Answers how many entries went and whether journals remain.
   */
  compact(before: Millis, maxEntries: number, userLimit: number): Promise<{ removed: number; more: boolean }>
}

/** Small named facts about the data, shared by every API node (migration 0009). */
export interface SettingRepository {
  /** The value, or null when never set. */
  get(name: string): Promise<string | null>
  /** Sets the value, whether or not it was set before. */
  put(name: string, value: string): Promise<void>
}

/**
 * Named leases: at most one holder of a name at a time, until the lease expires. For jobs that
 * several API nodes would otherwise repeat (upkeep); never for correctness, since a holder
 * that stalls past its expiry cannot tell that another has taken over.
 */
export interface LeaseRepository {
  /**
   * Takes the lease for `holder` until `now + ttlMs` when no one holds it, it has expired, or
   * `holder` holds it already (a renewal). One statement, so of several holders racing for it
   * exactly one gets it. Answers whether `holder` holds it now.
   */
  acquire(name: string, holder: string, now: Millis, ttlMs: number): Promise<boolean>
  /** Gives the lease up when `holder` holds it; leaves another holder's alone. */
  release(name: string, holder: string): Promise<void>
}

/** A folder shared with a user, as `GET /shared-with-me` lists it. */
export interface SharedFolder {
  member: FolderMember
  folder: NodeRecord
  ownerEmail: string
}

/** Folder members and public links (API.md, Sharing; migration 0006). */
export interface SharingRepository {
  /** Adds a member, or changes a member's role; answers true when they were not one before. */
  putMember(member: FolderMember): Promise<boolean>
  /** Answers whether there was such a member. */
  removeMember(folderId: string, userId: string): Promise<boolean>
  /** A folder's members, oldest first. */
  members(folderId: string): Promise<FolderMember[]>
  /** The memberships of `userId` among these folders (a node's lineage, for access checks). */
  memberships(userId: string, folderIds: readonly string[]): Promise<FolderMember[]>
  /** Every member of any of these folders (who sees a change made below them). */
  membersOfAny(folderIds: readonly string[]): Promise<FolderMember[]>
  /** Live folders shared with the user, most recently shared first. */
  sharedWith(userId: string): Promise<SharedFolder[]>

  insertLink(link: ShareLink, tokenHash: string): Promise<void>
  /** The link with this token hash, revoked or expired too (the caller decides), or null. */
  findLink(tokenHash: string): Promise<ShareLink | null>
  /** The owner's links that are not revoked, newest first, with their items (any state). */
  linksOf(ownerId: string): Promise<{ link: ShareLink; node: NodeRecord }[]>
  /** Answers whether a link of this owner was live and is revoked now. */
  revokeLink(ownerId: string, linkId: string, now: Millis): Promise<boolean>
  countDownload(linkId: string): Promise<void>
  /**
   * Takes one password-attempt slot on the link for `address`, before the password is checked,
   * or refuses: granted only while fewer than `perLink` slots of the link's current window are
   * taken, and fewer than `perAddress` of them by this address. A window lasts `windowMs` from
   * the first attempt after the last one ended. Atomic in the database, so concurrent requests
   * on any number of API nodes never take more slots than that.
   */
  reservePasswordAttempt(
    linkId: string,
    address: string,
    now: Millis,
    limits: PasswordAttemptLimits,
  ): Promise<PasswordAttempt>
  /**
   * Gives back a slot taken in the window that started at `windowStart` (the password was
   * right). Nothing when that window is over: a newer window's count is not touched.
   */
  refundPasswordAttempt(linkId: string, address: string, windowStart: Millis): Promise<void>
}

export interface PasswordAttemptLimits {
  windowMs: number
  perLink: number
  perAddress: number
}

/** A slot, in the window that started at `windowStart`; or when the full window ends. */
export type PasswordAttempt =
  | { granted: true; windowStart: Millis }
  | { granted: false; windowEndsAt: Millis }

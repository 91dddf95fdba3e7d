import { conflictedCopyName, restoredName } from '../../src/domain/conflicted-name.js'
import type { ErrorCode } from '../../src/domain/errors.js'
import { contentHashOf, sha256Hex } from '../../src/domain/hashes.js'
import { nextPruneAt, type RetentionPolicy, versionsToPrune } from '../../src/domain/retention.js'
import { testConfig } from '../helpers/service-fixture.js'

/**
 * The reference model of the storage model test: what Tessera should hold, in plain memory.
 * Files are lists of chunks drawn from a small pool, so that the same chunk turns up in many
 * files, versions and users at once (dedup all the time), and the model can say exactly which
 * chunk rows exist, what each one's reference count is, and what a collector run must delete.
 */

export const MINUTE = 60_000
export const HOUR = 3_600_000
export const DAY = 24 * HOUR
/**
 * The system under test runs with the server's defaults (config.ts) but for what the model needs:
 * sessions that outlive any run, no session cache, a quota no run reaches, chunks of any size.
 */
export const MODEL_CONFIG = testConfig({
  SESSION_TTL_HOURS: String(365 * 24),
  SESSION_CACHE_MS: '0',
  DEFAULT_QUOTA_BYTES: String(1024 ** 3),
})
export const GC_GRACE_MS = MODEL_CONFIG.gc.graceMs
export const UPLOAD_TTL_MS = MODEL_CONFIG.uploads.sessionTtlMs
/** A completed session answers a retried complete at least this long (services/uploads/commit.ts). */
export const COMPLETION_REMEMBERED_MS = HOUR
/** What the trash listing shows as purgeAt. */
export const TRASH_RETENTION_MS = MODEL_CONFIG.trash.retentionMs
export const USERS = 3
/** Upload targets: few, so that most uploads make a new version of something. */
export const NAMES = ['notes.txt', 'photo.jpg', 'README'] as const
/** Folders live in the root only; files in the root or in a folder. */
export const FOLDER_NAMES = ['docs', 'pics'] as const
/** Paused uploads ("devices") a user keeps at most. */
export const MAX_PAUSED = 4
export const MAX_FILE_CHUNKS = 5
/** The model's name for every user's root folder. */
export const ROOT = 'root'

const POOL_SIZES = [1, 64, 7, 33, 16, 64, 2, 50, 9, 27, 64, 40]
/** Chunk contents; a file is a list of indexes into this pool. */
export const POOL: readonly Buffer[] = POOL_SIZES.map((size, i) =>
  Buffer.from(Array.from({ length: size }, (_, j) => (i * 37 + j * 11 + 5) & 0xff)),
)
export const POOL_HASHES: readonly string[] = POOL.map((bytes) => sha256Hex(bytes))
if (new Set(POOL_HASHES).size !== POOL.length) throw new Error('the chunk pool must hold distinct chunks')

/** Pool indexes, in file order. */
export type Content = readonly number[]

export const sizeOf = (content: Content): number => content.reduce((sum, i) => sum + POOL[i]!.length, 0)
export const bytesOf = (content: Content): Buffer => Buffer.concat(content.map((i) => POOL[i]!))
export const contentHash = (content: Content): string => contentHashOf(content.map((i) => POOL_HASHES[i]!))
/** The chunk list a version should have: [hash, size, offset] per chunk. */
export function chunkListOf(content: Content): [string, number, number][] {
  let offset = 0
  return content.map((i) => {
    const entry: [string, number, number] = [POOL_HASHES[i]!, POOL[i]!.length, offset]
    offset += POOL[i]!.length
    return entry
  })
}

export interface ModelVersion {
  number: number
  content: Content
  /** The clock when it was made: what retention goes by. */
  createdAt: number
}

interface ModelNodeBase {
  id: string
  name: string
  /** ROOT or a folder's id. */
  parent: string
  /** When it went to the trash (itself or with its folder); null while live. */
  deletedAt: number | null
  /** The node whose deletion trashed it (itself when deleted on its own); null while live. */
  trashRoot: string | null
}

export interface ModelFile extends ModelNodeBase {
  kind: 'file'
  /** Retained versions, oldest first; the last one is current. */
  versions: ModelVersion[]
  /**
   * When the history sweep next visits it (`nextPruneAt` of what the last prune kept); null
   * while it has one version, or nothing will ever age out.
   */
  dueAt: number | null
}

export interface ModelFolder extends ModelNodeBase {
  kind: 'folder'
}

export type ModelNode = ModelFile | ModelFolder

export const currentOf = (file: ModelFile): ModelVersion => file.versions.at(-1)!
export const sizeOfFile = (file: ModelFile): number => sizeOf(currentOf(file).content)

export type ChunkState = 'needed' | 'prove' | 'ok'

export interface ModelSession {
  id: string
  user: number
  /** ROOT or a folder's id. */
  folder: string
  filename: string
  content: Content
  baseVersion: number | null
  /** Per chunk of the file, as the server should have it recorded. */
  states: ChunkState[]
  expiresAt: number
  nonce: string
  /** The session's rows exist (until completed, aborted, or removed expired). */
  inDb: boolean
  /** The client still holds it as paused (until it learns it has expired). */
  known: boolean
}

export interface ModelUser {
  /** Files that are not purged, live or trashed, in creation order. */
  files: ModelFile[]
  folders: ModelFolder[]
}

export interface ChunkRow {
  /** The collector's mark; 0 (the epoch) for a chunk a session's end released (`release`). */
  markedAt: number | null
  /**
   * No version has named the chunk since this row was made (`chunks.never_referenced`): true
   * from the PUT that stores its copy (a row the collector deleted and a later PUT makes again
   * is a new row) until the first version names it.
   */
  neverReferenced: boolean
}

export type PredictedCompletion =
  | { error: ErrorCode }
  | { error?: undefined; name: string; conflict: boolean; existing: ModelFile | null; version: number }

/** Why retention dropped a version (for the coverage counts). */
export type PruneReason = 'age' | 'thinning' | 'count'

export interface SweepReport {
  visited: number
  pruned: number
  policyChanged: boolean
}

export interface PredictedGc {
  expiredUploads: number
  swept: number
  sweptBytes: number
  marked: number
  orphans: number
}

export class StorageModel {
  users: ModelUser[]
  sessions: ModelSession[] = []
  /** Chunk rows (all live: a claimed chunk is deleted within the same collector run). */
  rows = new Map<number, ChunkRow>()
  /** Chunk bytes on disk with no row: a chunk PUT that crashed between the two. */
  orphans = new Set<number>()
  /**
   * The expiry times of the completed sessions. The server keeps a completed session (without
   * its chunk list, so it protects nothing) until it expires, to answer a retried complete with
   * what it made; the collector's run then removes it with the expired open ones.
   */
  completedExpiries: number[] = []
  /** A history sweep has recorded the policy (the first one makes every file with history due). */
  policyAdopted = false
  /** What retention dropped, and where, since the commands last read it (coverage counts). */
  pruneLog: string[] = []

  constructor(
    public now: number,
    readonly policy: RetentionPolicy,
    userCount: number,
  ) {
    this.users = Array.from({ length: userCount }, () => ({ files: [], folders: [] }))
  }

  /** A copy sharing nothing mutable, to try one order of a concurrent batch on. */
  clone(): StorageModel {
    const copy = new StorageModel(this.now, this.policy, 0)
    copy.replaceWith(this, true)
    return copy
  }

  /** Takes over `other`'s whole state (copied when `deep`), keeping this object's identity. */
  replaceWith(other: StorageModel, deep = false): void {
    const state = deep ? structuredClone(other.#state()) : other.#state()
    this.now = other.now
    this.users = state.users
    this.sessions = state.sessions
    this.rows = state.rows
    this.orphans = state.orphans
    this.completedExpiries = state.completedExpiries
    this.policyAdopted = other.policyAdopted
    this.pruneLog = deep ? [...other.pruneLog] : other.pruneLog
  }

  #state() {
    const { users, sessions, rows, orphans, completedExpiries } = this
    return { users, sessions, rows, orphans, completedExpiries }
  }

  // ---- the tree ----------------------------------------------------------------------------

  liveFiles(user: number): ModelFile[] {
    return this.users[user]!.files.filter((file) => file.deletedAt === null)
  }

  trashedFiles(user: number): ModelFile[] {
    return this.users[user]!.files.filter((file) => file.deletedAt !== null)
  }

  liveFolders(user: number): ModelFolder[] {
    return this.users[user]!.folders.filter((folder) => folder.deletedAt === null)
  }

  nodes(user: number): ModelNode[] {
    return [...this.users[user]!.folders, ...this.users[user]!.files]
  }

  /** What the trash lists: the nodes the user deleted themselves. */
  trashRoots(user: number): ModelNode[] {
    return this.nodes(user).filter((node) => node.deletedAt !== null && node.trashRoot === node.id)
  }

  folder(user: number, id: string): ModelFolder | null {
    return this.users[user]!.folders.find((folder) => folder.id === id) ?? null
  }

  isLiveFolder(user: number, id: string): boolean {
    return id === ROOT || this.folder(user, id)?.deletedAt === null
  }

  liveChildren(user: number, parent: string): ModelNode[] {
    return this.nodes(user).filter((node) => node.parent === parent && node.deletedAt === null)
  }

  liveChild(user: number, parent: string, name: string): ModelNode | null {
    return this.liveChildren(user, parent).find((node) => node.name === name) ?? null
  }

  /** The path a trash entry shows: its folder's path and its own name. */
  originalPath(user: number, node: ModelNode): string {
    return node.parent === ROOT ? `/${node.name}` : `/${this.folder(user, node.parent)!.name}/${node.name}`
  }

  usedBytes(user: number): number {
    return this.users[user]!.files.reduce((sum, file) => sum + sizeOfFile(file), 0)
  }

  addFolder(user: number, id: string, name: string): void {
    this.users[user]!.folders.push({
      kind: 'folder',
      id,
      name,
      parent: ROOT,
      deletedAt: null,
      trashRoot: null,
    })
  }

  /** To the trash: the node, and for a folder every live file in it. */
  trash(user: number, node: ModelNode): void {
    const members = node.kind === 'folder' ? this.liveChildren(user, node.id) : []
    for (const member of [node, ...members]) {
      member.deletedAt = this.now
      member.trashRoot = node.id
    }
  }

  /**
   * Back from the trash with what went with it: into its folder when that is live, else the
   * root; under its name, or `name (restored N).ext` when that is taken.
   */
  restore(user: number, node: ModelNode): void {
    const parent = this.isLiveFolder(user, node.parent) ? node.parent : ROOT
    const taken = new Set(this.liveChildren(user, parent).map((n) => n.name))
    let name = node.name
    for (let attempt = 1; taken.has(name); attempt++) name = restoredName(node.name, node.kind, attempt)
    node.parent = parent
    node.name = name
    const rootId = node.id
    for (const member of this.nodes(user)) {
      if (member.trashRoot === rootId) {
        member.deletedAt = null
        member.trashRoot = null
      }
    }
  }

  /** Gone for good: the node and, for a folder, everything that was in it. */
  purge(user: number, node: ModelNode): void {
    const account = this.users[user]!
    account.files = account.files.filter((file) => file !== node && file.parent !== node.id)
    account.folders = account.folders.filter((folder) => folder !== node)
  }

  // ---- chunks ------------------------------------------------------------------------------

  /** Version entries naming each chunk: every retained version of every file not purged. */
  refCounts(): Map<number, number> {
    const counts = new Map<number, number>()
    for (const user of this.users)
      for (const file of user.files)
        for (const version of file.versions)
          for (const i of version.content) counts.set(i, (counts.get(i) ?? 0) + 1)
    return counts
  }

  /** Chunks the user has shown to hold: in some version of one of their files, trashed or not. */
  readableBy(user: number, chunk: number): boolean {
    return this.users[user]!.files.some((file) => file.versions.some((v) => v.content.includes(chunk)))
  }

  classify(user: number, chunk: number): ChunkState {
    if (!this.rows.has(chunk)) return 'needed'
    return this.readableBy(user, chunk) ? 'ok' : 'prove'
  }

  // ---- uploads -----------------------------------------------------------------------------

  pausedSessions(user: number): ModelSession[] {
    return this.sessions.filter((session) => session.user === user && session.known)
  }

  expired(session: ModelSession): boolean {
    return this.now >= session.expiresAt
  }

  openSession(
    user: number,
    folder: string,
    id: string,
    filename: string,
    content: Content,
    baseVersion: number | null,
    nonce: string,
  ): ModelSession {
    const session: ModelSession = {
      id,
      user,
      folder,
      filename,
      content,
      baseVersion,
      states: content.map((i) => this.classify(user, i)),
      expiresAt: this.now + UPLOAD_TTL_MS,
      nonce,
      inDb: true,
      known: true,
    }
    this.sessions.push(session)
    return session
  }

  /**
   * The states a refresh would record (chunks stored or removed meanwhile), without recording
   * them: `ok` stays ok while the bytes are there.
   */
  preview(session: ModelSession): ChunkState[] {
    return session.content.map((i, index) => {
      const now = this.classify(session.user, i)
      return session.states[index] === 'ok' && now !== 'needed' ? 'ok' : now
    })
  }

  /** What the server does on check, prove and complete (and only then). */
  refresh(session: ModelSession): void {
    session.states = this.preview(session)
  }

  /** A chunk uploaded: its row exists, and every chunk of the session with its bytes is ok. */
  putChunk(session: ModelSession, index: number): void {
    const chunk = session.content[index]!
    if (!this.rows.has(chunk)) this.rows.set(chunk, { markedAt: null, neverReferenced: true })
    this.orphans.delete(chunk)
    this.markOk(session, chunk)
  }

  markOk(session: ModelSession, chunk: number): void {
    session.content.forEach((i, index) => {
      if (i === chunk) session.states[index] = 'ok'
    })
  }

  missing(session: ModelSession): number[] {
    return session.states.flatMap((state, index) => (state === 'ok' ? [] : [index]))
  }

  forget(session: ModelSession): void {
    this.sessions = this.sessions.filter((s) => s !== session)
  }

  /** An abort that succeeded: the session goes, and releases its chunks; answers how many. */
  abort(session: ModelSession): number {
    const released = this.release(session)
    this.forget(session)
    return released
  }

  /**
   * A session ends by abort or expiry (SqlUploadRepository.delete, deleteExpired): the chunks it
   * names whose row no version has ever named (and so none does) are marked at the epoch, past
   * every grace period, whatever their mark was. Also those another session still names: the
   * collector skips them while it does.
   */
  release(session: ModelSession): number {
    const refs = this.refCounts()
    let released = 0
    for (const i of new Set(session.content)) {
      const row = this.rows.get(i)
      if (row?.neverReferenced && (refs.get(i) ?? 0) === 0) {
        row.markedAt = 0
        released += 1
      }
    }
    return released
  }

  predictCompletion(session: ModelSession): PredictedCompletion {
    const { user, folder, filename } = session
    if (!this.isLiveFolder(user, folder)) return { error: 'NOT_FOUND' }
    const existing = this.liveChild(user, folder, filename)
    if (existing?.kind === 'folder') return { error: 'NAME_TAKEN' }
    const conflict =
      existing !== null && session.baseVersion !== null && currentOf(existing).number !== session.baseVersion
    if (existing && !conflict) {
      return { name: existing.name, conflict, existing, version: currentOf(existing).number + 1 }
    }
    let name = filename
    if (conflict) {
      const taken = new Set(this.liveChildren(user, folder).map((node) => node.name))
      for (let attempt = 1; ; attempt++) {
        name = conflictedCopyName(filename, new Date(this.now), attempt)
        if (!taken.has(name)) break
      }
    }
    return { name, conflict, existing: null, version: 1 }
  }

  /** The session's content becomes the current version (of `existing`, or of a new file). */
  complete(
    session: ModelSession,
    predicted: { name: string; existing: ModelFile | null },
    newId: string,
  ): ModelFile {
    this.forget(session)
    this.completedExpiries.push(Math.max(session.expiresAt, this.now + COMPLETION_REMEMBERED_MS))
    return this.makeVersion(session, predicted, newId)
  }

  /**
   * A one-request upload (`PUT /files/content`), as a session that is never recorded: for
   * `predictCompletion`, then `completeDirect`.
   */
  directUpload(
    user: number,
    folder: string,
    filename: string,
    content: Content,
    baseVersion: number | null,
  ): ModelSession {
    return {
      id: 'direct',
      user,
      folder,
      filename,
      content,
      baseVersion,
      states: content.map(() => 'ok'),
      expiresAt: this.now,
      nonce: '',
      inDb: false,
      known: false,
    }
  }

  /** A one-request upload's chunk stored (or checked) and its version made, in one go. */
  completeDirect(
    session: ModelSession,
    predicted: { name: string; existing: ModelFile | null },
    newId: string,
  ): ModelFile {
    // As putChunk: the row exists now.
    for (const chunk of session.content) {
      if (!this.rows.has(chunk)) this.rows.set(chunk, { markedAt: null, neverReferenced: true })
      this.orphans.delete(chunk)
    }
    return this.makeVersion(session, predicted, newId)
  }

  makeVersion(
    session: ModelSession,
    predicted: { name: string; existing: ModelFile | null },
    newId: string,
  ): ModelFile {
    if (predicted.existing) {
      this.appendVersion(predicted.existing, session.content)
      return predicted.existing
    }
    const file: ModelFile = {
      kind: 'file',
      id: newId,
      name: predicted.name,
      parent: session.folder,
      versions: [],
      deletedAt: null,
      trashRoot: null,
      dueAt: null,
    }
    this.users[session.user]!.files.push(file)
    this.appendVersion(file, session.content)
    return file
  }

  /**
   * A new current version; references clear collector marks; the history the retention policy
   * no longer keeps goes at once (services/append-version.ts: only when the file had a version).
   */
  appendVersion(file: ModelFile, content: Content): void {
    const number = (file.versions.at(-1)?.number ?? 0) + 1
    file.versions.push({ number, content, createdAt: this.now })
    for (const i of content) {
      const row = this.rows.get(i)
      if (!row) throw new Error(`model: version ${number} of ${file.name} names chunk ${i}, which has no row`)
      row.markedAt = null
      row.neverReferenced = false
    }
    if (file.versions.length > 1) this.prune(file, 'append')
  }

  // ---- retention ---------------------------------------------------------------------------

  /**
   * VersionHistory.prune at the model's time: drops what `versionsToPrune` says, and records
   * when the file is next due (`nextPruneAt` of what is kept). Answers how many went.
   */
  prune(file: ModelFile, where: 'append' | 'sweep'): number {
    if (file.versions.length <= 1) {
      file.dueAt = null
      return 0
    }
    const aged = file.versions.map((v) => ({ version: v.number, createdAt: v.createdAt }))
    const current = currentOf(file).number
    const doomed = new Set(versionsToPrune(aged, current, this.now, this.policy).map((v) => v.version))
    for (const number of doomed) this.pruneLog.push(`${where}.${this.pruneReason(file, number)}`)
    file.versions = file.versions.filter((v) => !doomed.has(v.number))
    const kept = aged.filter((v) => !doomed.has(v.version))
    file.dueAt = nextPruneAt(kept, current, this.now, this.policy)
    return doomed.size
  }

  /** Why a version goes: too old; else thinned (a policy without thinning keeps it); else count. */
  pruneReason(file: ModelFile, number: number): PruneReason {
    const version = file.versions.find((v) => v.number === number)!
    if (this.policy.maxAgeMs > 0 && this.now - version.createdAt > this.policy.maxAgeMs) return 'age'
    if (!this.policy.thin) return 'count'
    const aged = file.versions.map((v) => ({ version: v.number, createdAt: v.createdAt }))
    const unthinned = versionsToPrune(aged, currentOf(file).number, this.now, { ...this.policy, thin: false })
    return unthinned.some((v) => v.version === number) ? 'count' : 'thinning'
  }

  /** Files whose versions are still in the database: live and trashed, not purged. */
  allFiles(): ModelFile[] {
    return this.users.flatMap((user) => user.files)
  }

  /**
   * VersionHistory.sweep at the model's time: the first sweep records the policy and makes every
   * file with history due now; then every file due by now is pruned.
   */
  sweepHistory(): SweepReport {
    const policyChanged = !this.policyAdopted
    if (policyChanged) {
      this.policyAdopted = true
      for (const file of this.allFiles()) if (file.versions.length > 1) file.dueAt = this.now
    }
    let visited = 0
    let pruned = 0
    for (const file of this.allFiles()) {
      if (file.dueAt === null || file.dueAt > this.now) continue
      visited += 1
      pruned += this.prune(file, 'sweep')
    }
    return { visited, pruned, policyChanged }
  }

  /** The earliest due time after now, if any file has one. */
  nextDue(): number | null {
    let next: number | null = null
    for (const file of this.allFiles())
      if (file.dueAt !== null && file.dueAt > this.now && (next === null || file.dueAt < next))
        next = file.dueAt
    return next
  }

  /** Forgets the completed sessions expired at the model's time; answers how many. */
  removeExpiredCompletions(): number {
    const left = this.completedExpiries.filter((expiresAt) => expiresAt > this.now)
    const removed = this.completedExpiries.length - left.length
    this.completedExpiries = left
    return removed
  }

  // ---- the collector -----------------------------------------------------------------------

  /**
   * The server's sweep of expired upload sessions (UploadService.sweepExpired), which releases
   * their chunks (`release`); without `release`, the sessions only go (reconcile.ts judges the
   * marks of a sweep that raced other operations itself).
   */
  sweepExpiredUploads(release = true): number {
    let swept = 0
    for (const session of this.sessions) {
      if (session.inDb && session.expiresAt <= this.now) {
        if (release) this.release(session)
        session.inDb = false
        swept += 1
      }
    }
    this.sessions = this.sessions.filter((session) => session.inDb || session.known)
    return swept
  }

  /** Chunks named by an upload session (whose rows exist): never collected. */
  protectedChunks(): Set<number> {
    return new Set(this.sessions.filter((s) => s.inDb).flatMap((s) => s.content))
  }

  /**
   * One collector run at `now` (services/garbage-collector.ts): expired sessions go first;
   * then unreferenced chunks marked at least one grace period ago and named by no session are
   * deleted; then (with `orphans`) bytes without a row that no session names; then the
   * unreferenced chunks not yet marked are marked now. Orphans are always older than the grace
   * period: the disk store dates them by the real clock, which is years behind the test's.
   */
  gc(orphans: boolean): PredictedGc {
    const expiredUploads = this.sweepExpiredUploads()
    const named = this.protectedChunks()
    const refs = this.refCounts()
    const cutoff = this.now - GC_GRACE_MS
    let swept = 0
    let sweptBytes = 0
    for (const [chunk, row] of [...this.rows]) {
      if ((refs.get(chunk) ?? 0) > 0 || named.has(chunk)) continue
      if (row.markedAt !== null && row.markedAt <= cutoff) {
        this.rows.delete(chunk)
        swept += 1
        sweptBytes += POOL[chunk]!.length
      }
    }
    const foundOrphans = orphans ? this.orphans.size : 0
    if (orphans) for (const chunk of [...this.orphans]) if (!named.has(chunk)) this.orphans.delete(chunk)
    let marked = 0
    for (const [chunk, row] of this.rows) {
      if ((refs.get(chunk) ?? 0) === 0 && row.markedAt === null) {
        row.markedAt = this.now
        marked += 1
      }
    }
    return { expiredUploads, swept, sweptBytes, marked, orphans: foundOrphans }
  }

  /**
   * What a dry run reports, changing nothing: it neither removes expired sessions (so they
   * still protect their chunks) nor marks; of the orphan copies, those a run would delete.
   */
  gcDryRun(orphans: boolean): PredictedGc {
    const named = this.protectedChunks()
    const refs = this.refCounts()
    const cutoff = this.now - GC_GRACE_MS
    const unreferenced = [...this.rows].filter(([chunk]) => (refs.get(chunk) ?? 0) === 0)
    const claimable = unreferenced.filter(
      ([chunk, row]) => !named.has(chunk) && row.markedAt !== null && row.markedAt <= cutoff,
    )
    return {
      expiredUploads: 0,
      swept: claimable.length,
      sweptBytes: claimable.reduce((sum, [chunk]) => sum + POOL[chunk]!.length, 0),
      marked: unreferenced.filter(([, row]) => row.markedAt === null).length,
      orphans: orphans ? [...this.orphans].filter((chunk) => !named.has(chunk)).length : 0,
    }
  }
}

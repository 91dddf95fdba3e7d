import { createHmac } from 'node:crypto'
import { Readable } from 'node:stream'
import fc from 'fast-check'
import { expect } from 'vitest'
import { type BlobKey, blobName, newGeneration } from '../../src/domain/blob-key.js'
import { sha256Hex } from '../../src/domain/hashes.js'
import type { UploadSessionView } from '../../src/services/uploads/upload-service.js'
import { expectAppError } from '../helpers/app-error.js'
import { batchCommand } from './concurrent.js'
import {
  bytesOf,
  type ChunkState,
  type Content,
  chunkListOf,
  contentHash,
  currentOf,
  DAY,
  FOLDER_NAMES,
  GC_GRACE_MS,
  HOUR,
  MAX_FILE_CHUNKS,
  MAX_PAUSED,
  MINUTE,
  type ModelFile,
  type ModelNode,
  type ModelSession,
  NAMES,
  POOL,
  POOL_HASHES,
  type PredictedGc,
  ROOT,
  type StorageModel,
  sizeOf,
  sizeOfFile,
  TRASH_RETENTION_MS,
  UPLOAD_TTL_MS,
  USERS,
} from './model.js'
import type { System } from './system.js'

export interface Stats {
  commands: number
  byKind: Record<string, number>
  /** Notable outcomes (conflicted copies, expired resumes, dedup hits...), to see what was covered. */
  events: Record<string, number>
  /** Time spent in the commands themselves and in the checks after them. */
  commandMs: number
  verifyMs: number
}

export const newStats = (): Stats => ({ commands: 0, byKind: {}, events: {}, commandMs: 0, verifyMs: 0 })

/** The stats of the test that is running (one backend at a time). */
let current: Stats = newStats()
export const useStats = (stats: Stats): void => {
  current = stats
}
export const count = (event: string, n = 1): void => {
  if (n > 0) current.events[event] = (current.events[event] ?? 0) + n
}

type Exec = (m: StorageModel, s: System) => Promise<void>
/** Makes a command: its label, its kind (for the counts), when it applies, what it does. */
export type CommandFactory = (
  label: string,
  kind: string,
  applies: (m: StorageModel) => boolean,
  exec: Exec,
) => fc.AsyncCommand<StorageModel, System>

/**
 * One step. Its arguments are drawn without looking at the model (fast-check needs that), so
 * "which file" or "which paused upload" is an index taken modulo what exists when it runs.
 * After every step the whole system is checked against the model (`verify`).
 */
class StorageCommand implements fc.AsyncCommand<StorageModel, System> {
  constructor(
    private readonly label: string,
    private readonly kind: string,
    private readonly stats: Stats,
    private readonly applies: (m: StorageModel) => boolean,
    private readonly exec: Exec,
  ) {}

  check(m: Readonly<StorageModel>): boolean {
    return this.applies(m as StorageModel)
  }

  async run(m: StorageModel, s: System): Promise<void> {
    const started = performance.now()
    await this.exec(m, s)
    const ran = performance.now()
    for (const event of m.pruneLog.splice(0)) count(`pruned.${event}`)
    this.stats.commands += 1
    this.stats.byKind[this.kind] = (this.stats.byKind[this.kind] ?? 0) + 1
    this.stats.commandMs += ran - started
    await verify(m, s)
    this.stats.verifyMs += performance.now() - ran
  }

  toString(): string {
    return this.label
  }
}

export const pick = <T>(list: readonly T[], n: number): T => {
  if (list.length === 0) throw new Error('pick from an empty list')
  return list[n % list.length]!
}

export const hmacOf = (nonce: string, bytes: Buffer): string =>
  createHmac('sha256', Buffer.from(nonce, 'hex')).update(bytes).digest('hex')

export const indexesIn = (states: readonly ChunkState[], state: ChunkState): number[] =>
  states.flatMap((s, index) => (s === state ? [index] : []))

export function expectView(view: UploadSessionView, session: ModelSession): void {
  expect({
    uploadId: view.uploadId,
    totalChunks: view.totalChunks,
    chunksNeeded: view.chunksNeeded,
    chunksToProve: view.chunksToProve,
    chunksExisting: view.chunksExisting,
    expiresAt: view.expiresAt,
  }).toEqual({
    uploadId: session.id,
    totalChunks: session.content.length,
    chunksNeeded: indexesIn(session.states, 'needed'),
    chunksToProve: indexesIn(session.states, 'prove'),
    chunksExisting: session.content.length - indexesIn(session.states, 'needed').length,
    expiresAt: session.expiresAt,
  })
}

// ---- upload steps, each done on the system and on the model ------------------------------

export type Base = 'none' | 'current' | 'stale'
export type ProofBy = 'hmac' | 'upload'

export function baseVersionFor(
  m: StorageModel,
  user: number,
  folder: string,
  name: string,
  base: Base,
): number | null {
  const existing = m.liveChild(user, folder, name)
  if (existing?.kind !== 'file' || base === 'none') return null
  const current = currentOf(existing).number
  if (base === 'current') return current
  return current > 1 ? current - 1 : null
}

/** The upload target: the root or one of the live folders, by index. */
export const targetFolder = (m: StorageModel, user: number, place: number): string =>
  pick([ROOT, ...m.liveFolders(user).map((folder) => folder.id)], place)

export async function init(
  m: StorageModel,
  s: System,
  user: number,
  folder: string,
  filename: string,
  content: Content,
  baseVersion: number | null,
): Promise<ModelSession> {
  const view = await s.services.uploads.init(s.users[user]!, {
    folderId: folder === ROOT ? undefined : folder,
    filename,
    size: sizeOf(content),
    chunkHashes: content.map((i) => POOL_HASHES[i]),
    chunkSizes: content.map((i) => POOL[i]!.length),
    baseVersion: baseVersion ?? undefined,
  })
  const session = m.openSession(user, folder, view.uploadId, filename, content, baseVersion, view.proofNonce)
  expectView(view, session)
  count('init.prove', indexesIn(session.states, 'prove').length)
  count('init.ok', indexesIn(session.states, 'ok').length)
  return session
}

export async function putChunks(
  m: StorageModel,
  s: System,
  session: ModelSession,
  indexes: number[],
): Promise<void> {
  for (const index of indexes) {
    const chunk = session.content[index]!
    const bytes = POOL[chunk]!
    const deduplicated = m.rows.has(chunk)
    const receipt = await s.services.uploads.putChunk({
      user: s.users[session.user]!,
      uploadId: session.id,
      index,
      hash: POOL_HASHES[chunk],
      contentLength: bytes.length,
      body: Readable.from([bytes]),
    })
    expect(receipt).toEqual({ index, hash: POOL_HASHES[chunk], deduplicated })
    // A crashed PUT's copy has a generation of its own: the new copy goes beside it, and it
    // stays an orphan (the model's putChunk would count it as the chunk's bytes).
    const orphaned = m.orphans.has(chunk)
    if (orphaned) count('put.besideOrphanCopy')
    m.putChunk(session, index)
    if (orphaned) m.orphans.add(chunk)
  }
}

/** Shows possession of the chunks the server holds but the user never had, one way or the other. */
export async function proveHeld(
  m: StorageModel,
  s: System,
  session: ModelSession,
  by: ProofBy,
): Promise<void> {
  const toProve = indexesIn(m.preview(session), 'prove')
  if (toProve.length === 0) return
  count(`prove.${by}`, toProve.length)
  if (by === 'upload') {
    await putChunks(m, s, session, toProve)
    return
  }
  const proofs = Object.fromEntries(
    toProve.map((index) => [String(index), hmacOf(session.nonce, POOL[session.content[index]!]!)]),
  )
  const view = await s.services.uploads.prove(s.users[session.user]!, session.id, proofs)
  m.refresh(session)
  for (const index of toProve) m.markOk(session, session.content[index]!)
  expectView(view, session)
}

/** Completes, or (into a folder deleted meanwhile) fails and leaves the session as it was. */
async function complete(m: StorageModel, s: System, session: ModelSession): Promise<void> {
  m.refresh(session)
  if (m.missing(session).length > 0) throw new Error('model: completing an upload with chunks missing')
  const predicted = m.predictCompletion(session)
  if (predicted.error !== undefined) {
    await expectAppError(s.services.uploads.complete(s.users[session.user]!, session.id), predicted.error)
    count(`complete.${predicted.error}`)
    return
  }
  const result = await s.services.uploads.complete(s.users[session.user]!, session.id)
  expect({
    conflict: result.conflict,
    name: result.file.name,
    parent: result.file.parentId,
    version: result.file.currentVersion,
    size: result.file.size,
    contentHash: result.file.contentHash,
  }).toEqual({
    conflict: predicted.conflict,
    name: predicted.name,
    parent: folderIdOf(s, session.user, session.folder),
    version: predicted.version,
    size: sizeOf(session.content),
    contentHash: contentHash(session.content),
  })
  if (predicted.existing) expect(result.file.id).toBe(predicted.existing.id)
  else expect(m.nodes(session.user).map((f) => f.id)).not.toContain(result.file.id)
  count(
    predicted.conflict
      ? 'complete.conflictedCopy'
      : predicted.existing
        ? 'complete.newVersion'
        : 'complete.newFile',
  )
  m.complete(session, predicted, result.file.id)
}

/** A one-request upload: the file as `complete` would have made it, or the same refusal. */
async function putFileDirect(m: StorageModel, s: System, session: ModelSession): Promise<void> {
  const chunk = session.content[0]
  const bytes = chunk === undefined ? Buffer.alloc(0) : POOL[chunk]!
  const command = {
    user: s.users[session.user]!,
    folderId: session.folder === ROOT ? null : folderIdOf(s, session.user, session.folder),
    name: session.filename,
    baseVersion: session.baseVersion,
    hash: sha256Hex(bytes),
    contentLength: bytes.length,
    body: Readable.from([bytes]),
  }
  const predicted = m.predictCompletion(session)
  if (predicted.error !== undefined) {
    await expectAppError(s.services.uploads.putFile(command), predicted.error)
    count(`putFile.${predicted.error}`)
    return
  }
  const result = await s.services.uploads.putFile(command)
  expect({
    conflict: result.conflict,
    name: result.file.name,
    version: result.file.currentVersion,
    contentHash: result.file.contentHash,
  }).toEqual({
    conflict: predicted.conflict,
    name: predicted.name,
    version: predicted.version,
    contentHash: contentHash(session.content),
  })
  if (predicted.existing) expect(result.file.id).toBe(predicted.existing.id)
  // A crashed PUT's copy has a generation of its own: the new copy goes beside it, an orphan still.
  const orphaned = chunk !== undefined && m.orphans.has(chunk)
  m.completeDirect(session, predicted, result.file.id)
  if (orphaned) m.orphans.add(chunk)
  count(
    predicted.conflict
      ? 'putFile.conflictedCopy'
      : predicted.existing
        ? 'putFile.newVersion'
        : 'putFile.newFile',
  )
}

export const folderIdOf = (s: System, user: number, folder: string): string =>
  folder === ROOT ? s.users[user]!.rootFolderId : folder

/** The session is gone for its client: expired (the server no longer finds it). */
async function expectExpired(m: StorageModel, session: ModelSession, call: Promise<unknown>) {
  await expectAppError(call, 'UPLOAD_NOT_FOUND')
  count(session.inDb ? 'expired.beforeSweep' : 'expired.afterSweep')
  session.known = false
  if (!session.inDb) m.forget(session)
}

// ---- clock and collector ----------------------------------------------------------------

/**
 * Clock moves: minutes (several versions in one hour slot), below the grace period, exactly it,
 * beyond it; hours (versions move into hour slots, or age out of a few hours' retention); and
 * now and then the session TTL or around it, or days (day slots, a few days' retention), or a
 * month (week slots), each of which ends every paused upload (so not too often).
 */
export const delayArb = fc.oneof(
  { arbitrary: fc.integer({ min: 0, max: 10 * MINUTE }), weight: 3 },
  { arbitrary: fc.integer({ min: 0, max: GC_GRACE_MS - 1 }), weight: 3 },
  { arbitrary: fc.constant(GC_GRACE_MS), weight: 1 },
  { arbitrary: fc.integer({ min: GC_GRACE_MS, max: 3 * GC_GRACE_MS }), weight: 3 },
  { arbitrary: fc.integer({ min: 3 * HOUR, max: 20 * HOUR }), weight: 1 },
  { arbitrary: fc.constant(UPLOAD_TTL_MS), weight: 1 },
  {
    arbitrary: fc.integer({ min: UPLOAD_TTL_MS - GC_GRACE_MS, max: UPLOAD_TTL_MS + 2 * GC_GRACE_MS }),
    weight: 1,
  },
  { arbitrary: fc.integer({ min: DAY, max: 4 * DAY }), weight: 1 },
  { arbitrary: fc.integer({ min: 25 * DAY, max: 40 * DAY }), weight: 1 },
)

export const advance = (m: StorageModel, s: System, delay: number) => {
  m.now += delay
  s.now = m.now
}

const gcReport = (predicted: PredictedGc, dryRun: boolean) => ({
  dryRun,
  expiredUploads: predicted.expiredUploads,
  resumed: 0,
  swept: predicted.swept,
  sweptBytes: predicted.sweptBytes,
  marked: predicted.marked,
  orphans: predicted.orphans,
  errors: [],
})

export async function collect(m: StorageModel, s: System, options: { dryRun: boolean; orphans: boolean }) {
  if (options.dryRun) {
    const report = await s.services.gc.run({ dryRun: true, orphans: options.orphans })
    expect({ ...report, durationMs: 0 }, 'gc dry run').toEqual({
      ...gcReport(m.gcDryRun(options.orphans), true),
      durationMs: 0,
    })
  }
  const orphansBefore = m.orphans.size
  const predicted = m.gc(options.orphans)
  const report = await s.services.gc.run({ orphans: options.orphans })
  // A run reports the orphan copies it deleted: not those whose hash a session still names (a
  // dry run reports every one it found).
  const deleted = {
    ...predicted,
    expiredUploads: predicted.expiredUploads + m.removeExpiredCompletions(),
    orphans: orphansBefore - m.orphans.size,
  }
  expect({ ...report, durationMs: 0 }, 'gc report').toEqual({ ...gcReport(deleted, false), durationMs: 0 })
  count('gc.swept', predicted.swept)
  count('gc.expiredUploads', predicted.expiredUploads)
  count('gc.orphansDeleted', orphansBefore - m.orphans.size)
  count('gc.orphansProtected', options.orphans ? m.orphans.size : 0)
}

// ---- the commands -------------------------------------------------------------------------

export const userArb = fc.nat({ max: USERS - 1 })
export const nameArb = fc.constantFrom(...NAMES)
export const contentArb = fc.array(fc.nat({ max: POOL.length - 1 }), { maxLength: MAX_FILE_CHUNKS })
const maskArb = fc.array(fc.boolean(), { minLength: MAX_FILE_CHUNKS, maxLength: MAX_FILE_CHUNKS })
export const baseArb = fc.constantFrom<Base>('none', 'none', 'current', 'stale')
export const proofArb = fc.constantFrom<ProofBy>('hmac', 'upload')
export const choiceArb = fc.nat({ max: 1000 })
const bits = (mask: readonly boolean[]) => mask.map(Number).join('')

/** The history sweep upkeep runs (services/maintenance.ts), at the model's time, checked exactly. */
export async function sweepHistory(m: StorageModel, s: System): Promise<void> {
  const predicted = m.sweepHistory()
  const report = await s.services.history.sweep(s.now)
  expect(report, 'history sweep').toEqual(predicted)
  count('sweep.visited', report.visited)
  count('sweep.pruned', report.pruned)
}

/** How often a concurrent batch is drawn, against 39 for all the one-at-a-time commands. */
const BATCH_WEIGHT = 8

export function commandArbitrary(stats: Stats): fc.Arbitrary<fc.AsyncCommand<StorageModel, System>> {
  const command: CommandFactory = (label, kind, applies, exec) =>
    new StorageCommand(label, kind, stats, applies, exec)

  const upload = fc
    .record({
      user: userArb,
      place: choiceArb,
      name: nameArb,
      content: contentArb,
      base: baseArb,
      proofBy: proofArb,
    })
    .map(({ user, place, name, content, base, proofBy }) =>
      command(
        `upload(u${user}, place#${place}, ${name}, [${content}], base=${base}, proof=${proofBy})`,
        'upload',
        () => true,
        async (m, s) => {
          const folder = targetFolder(m, user, place)
          const baseVersion = baseVersionFor(m, user, folder, name, base)
          const session = await init(m, s, user, folder, name, content, baseVersion)
          await putChunks(m, s, session, indexesIn(session.states, 'needed'))
          await proveHeld(m, s, session, proofBy)
          await complete(m, s, session)
        },
      ),
    )

  const putFile = fc
    .record({
      user: userArb,
      place: choiceArb,
      name: nameArb,
      content: fc.array(fc.nat({ max: POOL.length - 1 }), { maxLength: 1 }),
      base: baseArb,
    })
    .map(({ user, place, name, content, base }) =>
      command(
        `putFile(u${user}, place#${place}, ${name}, [${content}], base=${base})`,
        'putFile',
        () => true,
        async (m, s) => {
          const folder = targetFolder(m, user, place)
          const baseVersion = baseVersionFor(m, user, folder, name, base)
          await putFileDirect(m, s, m.directUpload(user, folder, name, content, baseVersion))
        },
      ),
    )

  const startPaused = fc
    .record({
      user: userArb,
      place: choiceArb,
      name: nameArb,
      content: contentArb,
      base: baseArb,
      mask: maskArb,
    })
    .map(({ user, place, name, content, base, mask }) =>
      command(
        `startPaused(u${user}, place#${place}, ${name}, [${content}], base=${base}, put=${bits(mask)})`,
        'startPaused',
        (m) => m.pausedSessions(user).length < MAX_PAUSED,
        async (m, s) => {
          const folder = targetFolder(m, user, place)
          const baseVersion = baseVersionFor(m, user, folder, name, base)
          const session = await init(m, s, user, folder, name, content, baseVersion)
          const needed = indexesIn(session.states, 'needed')
          await putChunks(
            m,
            s,
            session,
            needed.filter((index) => mask[index]),
          )
        },
      ),
    )

  const resume = fc
    .record({
      user: userArb,
      choice: choiceArb,
      finish: fc.boolean(),
      mask: maskArb,
      proofBy: proofArb,
      earlyComplete: fc.boolean(),
      badProof: fc.boolean(),
    })
    .map(({ user, choice, finish, mask, proofBy, earlyComplete, badProof }) =>
      command(
        `resume(u${user}, #${choice}, ${finish ? 'finish' : `put=${bits(mask)}`}, proof=${proofBy}${earlyComplete ? ', earlyComplete' : ''}${badProof ? ', badProof' : ''})`,
        'resume',
        (m) => m.pausedSessions(user).length > 0,
        async (m, s) => {
          const session = pick(m.pausedSessions(user), choice)
          const account = s.users[user]!
          if (m.expired(session)) {
            await expectExpired(m, session, s.services.uploads.check(account, session.id))
            return
          }
          // A session into a folder deleted since goes on only once the folder is restored.
          if (!m.isLiveFolder(user, session.folder)) {
            await expectAppError(s.services.uploads.check(account, session.id), 'NOT_FOUND')
            count('resume.folderGone')
            return
          }
          // Whatever the collector did meanwhile, a session before its expiry can go on.
          const view = await s.services.uploads.check(account, session.id)
          m.refresh(session)
          expectView(view, session)
          if (earlyComplete && m.missing(session).length > 0) {
            const error = await expectAppError(
              s.services.uploads.complete(account, session.id),
              'CHUNKS_MISSING',
            )
            m.refresh(session)
            expect(error.details.missing).toEqual(m.missing(session))
            count('complete.early')
          }
          const needed = indexesIn(session.states, 'needed')
          await putChunks(
            m,
            s,
            session,
            needed.filter((index) => finish || mask[index]),
          )
          const toProve = indexesIn(m.preview(session), 'prove')
          if (badProof && toProve.length > 0) {
            const index = toProve[0]!
            const wrong = POOL[(session.content[index]! + 1) % POOL.length]!
            await expectAppError(
              s.services.uploads.prove(account, session.id, { [index]: hmacOf(session.nonce, wrong) }),
              'PROOF_INVALID',
            )
            m.refresh(session)
            count('prove.rejected')
          }
          if (finish) {
            await proveHeld(m, s, session, proofBy)
            await complete(m, s, session)
            count(m.sessions.includes(session) ? 'resume.notCompleted' : 'resume.completed')
          } else if (mask[MAX_FILE_CHUNKS - 1]) {
            await proveHeld(m, s, session, proofBy)
          }
        },
      ),
    )

  const abort = fc.record({ user: userArb, choice: choiceArb }).map(({ user, choice }) =>
    command(
      `abort(u${user}, #${choice})`,
      'abort',
      (m) => m.pausedSessions(user).length > 0,
      async (m, s) => {
        const session = pick(m.pausedSessions(user), choice)
        if (m.expired(session)) {
          await expectExpired(m, session, s.services.uploads.abort(s.users[user]!, session.id))
          return
        }
        await s.services.uploads.abort(s.users[user]!, session.id)
        count('abort.released', m.abort(session))
      },
    ),
  )

  /** A chunk PUT whose process died after the bytes were durable, before their row: a restart. */
  const crashedPut = fc
    .record({ user: userArb, choice: choiceArb, index: choiceArb })
    .map(({ user, choice, index }) =>
      command(
        `crashedPut(u${user}, #${choice}, chunk#${index})`,
        'crashedPut',
        (m) => m.pausedSessions(user).some((session) => !m.expired(session) && session.content.length > 0),
        async (m, s) => {
          const session = pick(
            m.pausedSessions(user).filter((x) => !m.expired(x) && x.content.length > 0),
            choice,
          )
          // Preferably a chunk with no row: the crash then leaves its copy behind as an orphan.
          const unrecorded = session.content.filter((i) => !m.rows.has(i) && !m.orphans.has(i))
          const chunk = pick(unrecorded.length > 0 ? unrecorded : session.content, index)
          // With a row, a PUT only reads the bytes and writes nothing before the row's commit.
          // (The model holds one orphan copy per chunk: a chunk orphaned already crashes again
          // before its write.)
          if (!m.rows.has(chunk) && !m.orphans.has(chunk)) {
            const copy = { hash: POOL_HASHES[chunk]!, generation: newGeneration() }
            await s.blobs.put(copy, Readable.from([POOL[chunk]!]))
            m.orphans.add(chunk)
            count('crashedPut.orphan')
          }
          await s.restart()
        },
      ),
    )

  const restoreVersion = fc
    .record({ user: userArb, choice: choiceArb, version: choiceArb })
    .map(({ user, choice, version }) =>
      command(
        `restoreVersion(u${user}, #${choice}, v#${version})`,
        'restoreVersion',
        (m) => m.liveFiles(user).length > 0,
        async (m, s) => {
          const file = pick(m.liveFiles(user), choice)
          const source = pick(file.versions, version)
          const restored = await s.services.versions.restore(s.users[user]!, file.id, source.number)
          expect([restored.id, restored.currentVersion, restored.size, restored.contentHash]).toEqual([
            file.id,
            currentOf(file).number + 1,
            sizeOf(source.content),
            contentHash(source.content),
          ])
          m.appendVersion(file, source.content)
        },
      ),
    )

  const createFolder = fc
    .record({ user: userArb, name: fc.constantFrom(...FOLDER_NAMES) })
    .map(({ user, name }) =>
      command(
        `createFolder(u${user}, ${name})`,
        'createFolder',
        () => true,
        async (m, s) => {
          const account = s.users[user]!
          if (m.liveChild(user, ROOT, name)) {
            await expectAppError(s.services.folders.create(account, { name }), 'NAME_TAKEN')
            count('createFolder.nameTaken')
            return
          }
          const created = await s.services.folders.create(account, { name })
          expect([created.node.name, created.node.parentId, created.path]).toEqual([
            name,
            account.rootFolderId,
            `/${name}`,
          ])
          m.addFolder(user, created.node.id, name)
        },
      ),
    )

  const deleteFile = fc.record({ user: userArb, choice: choiceArb }).map(({ user, choice }) =>
    command(
      `deleteFile(u${user}, #${choice})`,
      'deleteFile',
      (m) => m.liveFiles(user).length > 0,
      async (m, s) => {
        const file = pick(m.liveFiles(user), choice)
        await s.services.files.delete(s.users[user]!, file.id)
        m.trash(user, file)
      },
    ),
  )

  const deleteFolder = fc.record({ user: userArb, choice: choiceArb }).map(({ user, choice }) =>
    command(
      `deleteFolder(u${user}, #${choice})`,
      'deleteFolder',
      (m) => m.liveFolders(user).length > 0,
      async (m, s) => {
        const folder = pick(m.liveFolders(user), choice)
        await s.services.folders.delete(s.users[user]!, folder.id)
        count('deleteFolder.files', m.liveChildren(user, folder.id).length)
        m.trash(user, folder)
      },
    ),
  )

  const restoreTrash = fc.record({ user: userArb, choice: choiceArb }).map(({ user, choice }) =>
    command(
      `restoreTrash(u${user}, #${choice})`,
      'restoreTrash',
      (m) => m.trashRoots(user).length > 0,
      async (m, s) => {
        const node = pick(m.trashRoots(user), choice)
        const originalName = node.name
        const originalParent = node.parent
        m.restore(user, node)
        const { node: restored } = await s.services.trash.restore(s.users[user]!, node.id)
        expect([restored.id, restored.kind, restored.name, restored.parentId, restored.deletedAt]).toEqual([
          node.id,
          node.kind,
          node.name,
          folderIdOf(s, user, node.parent),
          null,
        ])
        if (node.name !== originalName) count('restoreTrash.renamed')
        if (node.parent !== originalParent) count('restoreTrash.toRoot')
      },
    ),
  )

  const purge = fc.record({ user: userArb, choice: choiceArb }).map(({ user, choice }) =>
    command(
      `purge(u${user}, #${choice})`,
      'purge',
      (m) => m.trashRoots(user).length > 0,
      async (m, s) => {
        const node = pick(m.trashRoots(user), choice)
        await s.services.trash.purge(s.users[user]!, node.id)
        m.purge(user, node)
      },
    ),
  )

  /** Another user's files, folders and uploads, and what lies in one's own trash, are out of reach. */
  const trespass = fc
    .record({
      user: userArb,
      other: fc.integer({ min: 1, max: USERS - 1 }),
      choice: choiceArb,
      op: fc.constantFrom('file', 'folder', 'trash', 'upload', 'ownTrashed'),
    })
    .map(({ user, other, choice, op }) => {
      const owner = op === 'ownTrashed' ? user : (user + other) % USERS
      const targets = (m: StorageModel): readonly (ModelNode | ModelSession)[] =>
        op === 'file'
          ? m.liveFiles(owner)
          : op === 'folder'
            ? m.liveFolders(owner)
            : op === 'trash'
              ? m.trashRoots(owner)
              : op === 'ownTrashed'
                ? m.trashedFiles(owner)
                : m.sessions.filter((session) => session.user === owner && session.inDb)
      return command(
        `trespass(u${user} -> u${owner}, ${op}, #${choice})`,
        'trespass',
        (m) => targets(m).length > 0,
        async (m, s) => {
          const account = s.users[user]!
          const target = pick(targets(m), choice)
          const notFound = (call: Promise<unknown>) => expectAppError(call, 'NOT_FOUND')
          if (!('kind' in target)) {
            await expectAppError(s.services.uploads.check(account, target.id), 'UPLOAD_NOT_FOUND')
            await expectAppError(s.services.uploads.abort(account, target.id), 'UPLOAD_NOT_FOUND')
            return
          }
          if (target.kind === 'folder') {
            if (op === 'trash') {
              await notFound(s.services.trash.restore(account, target.id))
              await notFound(s.services.trash.purge(account, target.id))
            }
            await notFound(s.services.files.list(account, { folderId: target.id }))
            await notFound(s.services.folders.delete(account, target.id))
            await notFound(
              s.services.uploads.init(account, {
                folderId: target.id,
                filename: 'x',
                size: 0,
                chunkHashes: [],
              }),
            )
            return
          }
          // Only the item a user deleted can be restored or purged, not what went with a folder.
          if (op === 'trash' || (op === 'ownTrashed' && target.trashRoot !== target.id)) {
            await notFound(s.services.trash.restore(account, target.id))
            await notFound(s.services.trash.purge(account, target.id))
          }
          await notFound(s.services.files.planDownload(account, target.id))
          await notFound(s.services.versions.list(account, target.id))
          await notFound(s.services.versions.restore(account, target.id, currentOf(target).number))
          await notFound(s.services.files.delete(account, target.id))
        },
      )
    })

  const gc = fc
    .record({ delay: delayArb, dryRun: fc.boolean(), orphans: fc.boolean() })
    .map(({ delay, dryRun, orphans }) =>
      command(
        `gc(+${delay} ms${dryRun ? ', dryRun first' : ''}${orphans ? ', orphans' : ''})`,
        'gc',
        () => true,
        async (m, s) => {
          advance(m, s, delay)
          await collect(m, s, { dryRun, orphans })
        },
      ),
    )

  const wait = fc.record({ delay: delayArb, sweep: fc.boolean() }).map(({ delay, sweep }) =>
    command(
      `wait(+${delay} ms${sweep ? ', sweep expired uploads' : ''})`,
      'wait',
      () => true,
      async (m, s) => {
        advance(m, s, delay)
        if (sweep) {
          const expired = m.sweepExpiredUploads() + m.removeExpiredCompletions()
          expect(await s.services.uploads.sweepExpired()).toBe(expired)
        }
      },
    ),
  )

  /** Time passes and upkeep sweeps history (and, as upkeep goes on to, maybe collects). */
  const sweep = fc.record({ delay: delayArb, thenGc: fc.boolean() }).map(({ delay, thenGc }) =>
    command(
      `sweepHistory(+${delay} ms${thenGc ? ', then gc' : ''})`,
      'sweepHistory',
      () => true,
      async (m, s) => {
        advance(m, s, delay)
        await sweepHistory(m, s)
        if (thenGc) await collect(m, s, { dryRun: false, orphans: false })
      },
    ),
  )

  /**
   * To the very millisecond at which the model says some file's history next changes, or the
   * one before (after a sweep now, so that nothing is overdue): a sweep then must drop
   * something, or nothing. Due times are exact, and a sweep visits exactly the files due.
   */
  const sweepAtDue = fc.constantFrom(-1, 0).map((offset) =>
    command(
      `sweepAtDue(${offset === 0 ? 'at' : 'just before'} the next due time)`,
      'sweepAtDue',
      (m) => m.allFiles().some((file) => file.versions.length > 1),
      async (m, s) => {
        await sweepHistory(m, s)
        const due = m.nextDue()
        if (due === null) return count('sweepAtDue.nothingDue')
        advance(m, s, due + offset - m.now)
        const versions = () => m.allFiles().reduce((sum, file) => sum + file.versions.length, 0)
        const before = versions()
        await sweepHistory(m, s)
        if (offset === 0) expect(versions(), 'model: a version goes at its due time').toBeLessThan(before)
        else expect(versions(), 'model: nothing goes before the due time').toBe(before)
        count(offset === 0 ? 'sweepAtDue.dropped' : 'sweepAtDue.justBefore')
      },
    ),
  )

  const restart = fc.constant(null).map(() =>
    command(
      'restart()',
      'restart',
      () => true,
      async (_m, s) => {
        await s.restart()
      },
    ),
  )

  const scrub = fc.constant(null).map(() =>
    command(
      'scrub()',
      'scrub',
      () => true,
      async (m, s) => {
        await expectScrub(m, s)
      },
    ),
  )

  return fc.oneof(
    { arbitrary: upload, weight: 6 },
    { arbitrary: putFile, weight: 2 },
    { arbitrary: startPaused, weight: 3 },
    { arbitrary: resume, weight: 4 },
    { arbitrary: abort, weight: 1 },
    { arbitrary: crashedPut, weight: 1 },
    { arbitrary: restoreVersion, weight: 2 },
    { arbitrary: createFolder, weight: 2 },
    { arbitrary: deleteFile, weight: 2 },
    { arbitrary: deleteFolder, weight: 2 },
    { arbitrary: restoreTrash, weight: 2 },
    { arbitrary: purge, weight: 2 },
    { arbitrary: trespass, weight: 1 },
    { arbitrary: gc, weight: 4 },
    { arbitrary: wait, weight: 1 },
    { arbitrary: sweep, weight: 2 },
    { arbitrary: sweepAtDue, weight: 2 },
    { arbitrary: batchCommand(command), weight: BATCH_WEIGHT },
    { arbitrary: restart, weight: 1 },
    { arbitrary: scrub, weight: 1 },
  )
}

// ---- checks -----------------------------------------------------------------------------

/**
 * A full scrub finds every chunk whole and the counts right; the only thing it may report is
 * bytes without a row, and exactly those a crashed PUT left (the collector's orphans).
 */
export async function expectScrub(m: StorageModel, s: System): Promise<void> {
  const report = await s.services.scrubber.run()
  const unknown = report.unknown.map((copy) => copy.hash).sort()
  expect({ ...report, unknown }, 'scrub').toMatchObject({
    checked: m.rows.size,
    bytes: [...m.rows.keys()].reduce((sum, i) => sum + POOL[i]!.length, 0),
    corrupt: [],
    missing: [],
    readErrors: [],
    markedDamaged: [],
    damaged: 0,
    danglingReferences: [],
    sizeMismatches: [],
    refCountMismatches: [],
    unknown: [...m.orphans].map((i) => POOL_HASHES[i]!).sort(),
    clean: m.orphans.size === 0,
  })
}

const byName = (a: { name: string }, b: { name: string }) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0)

const listed = (node: ModelNode) =>
  node.kind === 'folder'
    ? ['folder', node.name, node.id, 0, null, null]
    : [
        'file',
        node.name,
        node.id,
        sizeOfFile(node),
        currentOf(node).number,
        contentHash(currentOf(node).content),
      ]

/**
 * Everything the system holds against the model: each user's folder listings, trash and quota
 * use; every retained version's history entry, chunk list and bytes, of live and trashed files;
 * the paused uploads' chunk states; the chunk rows with their reference counts (and the store's
 * own recount); the bytes on disk.
 */
export async function verify(m: StorageModel, s: System): Promise<void> {
  const read = new Map<string, Promise<Buffer>>()
  const bytesOfCopy = (copy: BlobKey): Promise<Buffer> => {
    let bytes = read.get(blobName(copy))
    if (!bytes) {
      bytes = s.blobs.get(copy).then(async (stream) => {
        if (!stream)
          throw new Error(`chunk ${copy.hash} is referenced but its copy ${blobName(copy)} is gone`)
        return Buffer.concat((await stream.toArray()) as Buffer[])
      })
      read.set(blobName(copy), bytes)
    }
    return bytes
  }

  // Users, and files within a user, are checked concurrently (PostgreSQL runs them in parallel).
  const checkUser = async (u: number) => {
    const account = s.users[u]!
    const folders = [ROOT, ...m.liveFolders(u).map((folder) => folder.id)]
    for (const folder of folders) {
      const listing = await s.services.files.list(account, {
        folderId: folder === ROOT ? undefined : folder,
        limit: 1000,
      })
      const children = m.liveChildren(u, folder)
      expect(
        listing.page.items.map((n) => [n.kind, n.name, n.id, n.size, n.currentVersion, n.contentHash]),
        `u${u}: listing of ${listing.path}`,
      ).toEqual(
        [
          ...children.filter((n) => n.kind === 'folder').sort(byName),
          ...children.filter((n) => n.kind === 'file').sort(byName),
        ].map(listed),
      )
    }

    const trash = await s.services.trash.list(account, { limit: 1000 })
    expect(
      trash.items.map((item) => [
        item.node.id,
        item.node.kind,
        item.node.name,
        item.bytes,
        item.originalPath,
        item.purgeAt,
      ]),
      `u${u}: trash`,
    ).toEqual(
      m
        .trashRoots(u)
        .sort((a, b) => b.deletedAt! - a.deletedAt! || (a.id < b.id ? 1 : a.id > b.id ? -1 : 0))
        .map((node) => [
          node.id,
          node.kind,
          node.name,
          m.users[u]!.files.filter((f) => f.trashRoot === node.id).reduce((sum, f) => sum + sizeOfFile(f), 0),
          m.originalPath(u, node),
          node.deletedAt! + TRASH_RETENTION_MS,
        ]),
    )

    expect((await s.meta.users.findById(account.id))?.usedBytes, `u${u}: usedBytes`).toBe(m.usedBytes(u))

    const checkFile = async (file: ModelFile) => {
      const live = file.deletedAt === null
      const records = live
        ? await s.services.versions.list(account, file.id)
        : await s.meta.versions.list(file.id)
      expect(
        records.map((v) => [v.version, v.size, v.contentHash, v.createdAt]),
        `u${u}: versions of ${file.name}`,
      ).toEqual(
        [...file.versions]
          .reverse()
          .map((v) => [v.number, sizeOf(v.content), contentHash(v.content), v.createdAt]),
      )
      const current = currentOf(file)
      for (const version of file.versions) {
        const record = records.find((r) => r.version === version.number)!
        const where = `u${u}: ${file.name} v${version.number}${live ? '' : ' (trashed)'}`
        // The chunk list by id, and as a download plans it: every chunk with a sound copy.
        const chunks = await s.meta.versions.chunks(record.id)
        expect(
          chunks.map((c) => [c.hash, c.size, c.offset]),
          `${where}: chunk list`,
        ).toEqual(chunkListOf(version.content))
        const plan = await s.meta.versions.readPlan(file.id, version.number, 0)
        expect(plan?.version, `${where}: planned version`).toEqual(record)
        expect(
          plan?.chunks.map((c) => [c.hash, c.size, c.offset, c.damaged]),
          `${where}: planned chunks`,
        ).toEqual(chunkListOf(version.content).map((chunk) => [...chunk, false]))
        const copies = plan!.chunks.map(({ hash, generation }) => {
          expect(generation, `${where}: the copy of ${hash}`).not.toBeNull()
          return { hash, generation: generation! }
        })
        const bytes = Buffer.concat(await Promise.all(copies.map(bytesOfCopy)))
        expect(bytes.equals(bytesOf(version.content)), `${where}: bytes`).toBe(true)
        // A live file's current version is also read the way a download reads it (verified).
        if (live && version === current && bytes.length > 0) {
          const download = await s.services.files.planDownload(account, file.id)
          const pieces: Buffer[] = []
          for await (const piece of await download.open(0, bytes.length - 1)) pieces.push(piece)
          expect(Buffer.concat(pieces).equals(bytes), `${where}: downloaded bytes`).toBe(true)
        }
      }
    }
    await Promise.all(m.users[u]!.files.map(checkFile))
  }
  await Promise.all(m.users.map((_, u) => checkUser(u)))

  await Promise.all(
    m.sessions.map(async (session) => {
      const chunks = await s.meta.uploads.chunks(session.id)
      expect(
        chunks.map((c) => [c.index, c.hash, c.state]),
        `upload ${session.id} of u${session.user}`,
      ).toEqual(
        session.inDb ? session.content.map((i, index) => [index, POOL_HASHES[i], session.states[index]]) : [],
      )
    }),
  )

  const refs = m.refCounts()
  const expectedRows = [...m.rows.keys()]
    .map((i) => [POOL_HASHES[i]!, POOL[i]!.length, refs.get(i) ?? 0, 'live'] as const)
    .sort((a, b) => (a[0] < b[0] ? -1 : 1))
  const rows = (await s.meta.audit.liveChunks(null, 1000))
    .map((c) => [c.hash, c.size, c.refCount, c.state] as const)
    .sort((a, b) => (a[0] < b[0] ? -1 : 1))
  expect(rows, 'chunk rows (hash, size, refCount, state)').toEqual(expectedRows)
  const generations = await s.meta.collector.generations(POOL_HASHES)
  expect([...generations.keys()].sort(), 'chunk rows in any state').toEqual(expectedRows.map((row) => row[0]))
  // Each collector mark as the model has it: a run's, or the epoch for a chunk released by the
  // end of the session that stored it.
  const byHash = (entries: [string, number | null][]) => entries.sort(([a], [b]) => (a < b ? -1 : 1))
  expect(byHash([...(await s.marks())]), 'collector marks').toEqual(
    byHash([...m.rows].map(([i, row]) => [POOL_HASHES[i]!, row.markedAt])),
  )
  for (const chunk of refs.keys())
    expect(m.rows.has(chunk), `model: referenced chunk ${chunk} has a row`).toBe(true)
  expect(await s.meta.audit.refCountMismatches(), 'reference count recount').toEqual([])
  expect(await s.meta.audit.danglingReferences(), 'dangling references').toEqual([])

  // On disk: each row's copy, under the generation the row names, and each orphan copy beside.
  const stored: string[] = []
  const rowCopies: string[] = []
  for await (const blob of s.blobs.list()) {
    stored.push(blob.hash)
    if (generations.get(blob.hash) === blob.generation) rowCopies.push(blob.hash)
  }
  expect(stored.sort(), 'chunk copies on disk').toEqual(
    [...m.rows.keys(), ...m.orphans].map((i) => POOL_HASHES[i]!).sort(),
  )
  expect(rowCopies.sort(), 'the copies the rows name').toEqual(expectedRows.map((row) => row[0]))
}

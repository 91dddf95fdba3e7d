import { Readable } from 'node:stream'
import { setImmediate, setTimeout } from 'node:timers/promises'
import fc from 'fast-check'
import { expect } from 'vitest'
import { AppError, type ErrorCode } from '../../src/domain/errors.js'
import type { GcReport } from '../../src/services/garbage-collector.js'
import type { CompletedUpload, UploadSessionView } from '../../src/services/uploads/upload-service.js'
import type { HistorySweepReport } from '../../src/services/version-history.js'
import {
  advance,
  type Base,
  baseArb,
  baseVersionFor,
  type CommandFactory,
  choiceArb,
  contentArb,
  count,
  delayArb,
  expectView,
  hmacOf,
  indexesIn,
  init,
  nameArb,
  type ProofBy,
  pick,
  proofArb,
  proveHeld,
  putChunks,
  targetFolder,
  userArb,
} from './commands.js'
import {
  type Content,
  GC_GRACE_MS,
  MAX_FILE_CHUNKS,
  type ModelSession,
  NAMES,
  POOL,
  POOL_HASHES,
  ROOT,
  type StorageModel,
  sizeOf,
} from './model.js'
import { reconcile } from './reconcile.js'
import type { System } from './system.js'

/**
 * The concurrent batch: 2 to 4 operations started at once against the system (uploads of
 * different users drawing on the same chunks, a complete fired twice, an abort racing a
 * complete, deletes, restores, purges, version restores, a collector run, a history sweep).
 *
 * Nothing is guessed about the order they ran in. Afterwards the outcome is read back (each
 * operation's answers, which chunk rows the collector deleted or an upload stored, the marks,
 * the orphan copies left) and checked against what the model allows:
 * - the effects on the trees (each one transaction) must be those of some order of them: every
 *   order is tried on a copy of the model (orders differing only in swapping two users' steps
 *   are tried once), and kept when every answer agrees with what it predicts; when several
 *   orders agree but leave different trees, the system's nodes and versions decide;
 * - what the collector deleted must lie between what it must delete (garbage nothing in the
 *   batch could have named) and what it may (garbage a racing upload may have named after the
 *   claim); a chunk stored anew by the batch gets exactly one receipt that is not a dedup hit;
 *   an upload may be told a chunk is "ok" only if its user held it in some file, and "needed"
 *   only if its row was not there all along; the collector's marks are what the model has, or
 *   "now" for a row that was unreferenced at some point of the batch, and its report agrees;
 *   orphan copies go only when no lasting session names them;
 * - exactly one of a raced abort and complete succeeds; every complete of a session answers
 *   the same file and version (also when retried once more after the batch). The one answer
 *   tolerated beyond the documented ones: a complete that lost to an abort may answer
 *   CHUNKS_MISSING instead of UPLOAD_NOT_FOUND when the collector took the chunks the abort
 *   freed (counted as abortVsComplete.abortWon.completeAnsweredChunksMissing).
 * The model then takes over that outcome, and `verify` checks the whole system exactly.
 */

export type TreeOpKind = 'deleteFile' | 'deleteFolder' | 'restoreTrash' | 'purge'

type OpSpec = { stagger: number } & (
  | {
      kind: 'upload'
      user: number
      place: number
      name: string
      content: number[]
      base: Base
      proofBy: ProofBy
      /** Also a chunk the collector may be about to delete (unreferenced and marked), if any. */
      garbage: boolean
    }
  | ({ kind: 'completeTwice'; gapMs: number } & RacedSession)
  | ({ kind: 'abortVsComplete'; abortFirst: boolean; gapMs: number } & RacedSession)
  | { kind: TreeOpKind; user: number; choice: number }
  | {
      kind: 'restoreVersion'
      user: number
      choice: number
      version: number
      /** Preferably a file whose history is due (a sweep in the batch may be visiting it). */
      due: boolean
    }
  | { kind: 'gc'; orphans: boolean }
  | { kind: 'sweep' }
)

/**
 * The session a raced complete or abort acts on: one of the user's paused uploads, or (when
 * `fresh`, or none is left) a new one of `content` at `place`.
 */
interface RacedSession {
  user: number
  choice: number
  fresh: boolean
  place: number
  name: string
  content: number[]
}

const staggerArb = fc.nat({ max: 3 })
/**
 * How long the second of two raced calls waits: not at all (both in flight at once; an abort
 * then nearly always wins, being the shorter), or a few milliseconds (the first may be done).
 */
const gapArb = fc.constantFrom(0, 0, 2, 5, 10)

/** Built on first use: commands.ts, whose arbitraries it takes, imports this module. */
const opSpecArb = (): fc.Arbitrary<OpSpec> =>
  fc.oneof(
    {
      arbitrary: fc.record({
        kind: fc.constant('upload' as const),
        user: userArb,
        place: choiceArb,
        name: nameArb,
        content: contentArb,
        base: baseArb,
        proofBy: proofArb,
        garbage: fc.constantFrom(false, false, true),
        stagger: staggerArb,
      }),
      weight: 6,
    },
    {
      arbitrary: fc.record({
        kind: fc.constant('completeTwice' as const),
        user: userArb,
        choice: choiceArb,
        fresh: fc.boolean(),
        place: choiceArb,
        name: nameArb,
        content: contentArb,
        gapMs: gapArb,
        stagger: staggerArb,
      }),
      weight: 3,
    },
    {
      arbitrary: fc.record({
        kind: fc.constant('abortVsComplete' as const),
        user: userArb,
        choice: choiceArb,
        fresh: fc.boolean(),
        place: choiceArb,
        name: nameArb,
        content: contentArb,
        abortFirst: fc.boolean(),
        gapMs: gapArb,
        stagger: staggerArb,
      }),
      weight: 3,
    },
    {
      arbitrary: fc.record({
        kind: fc.constantFrom<TreeOpKind>('deleteFile', 'deleteFolder', 'restoreTrash', 'purge'),
        user: userArb,
        choice: choiceArb,
        stagger: staggerArb,
      }),
      weight: 4,
    },
    {
      arbitrary: fc.record({
        kind: fc.constant('restoreVersion' as const),
        user: userArb,
        choice: choiceArb,
        version: choiceArb,
        due: fc.constantFrom(false, true),
        stagger: staggerArb,
      }),
      weight: 2,
    },
    {
      arbitrary: fc.record({ kind: fc.constant('gc' as const), orphans: fc.boolean(), stagger: staggerArb }),
      weight: 3,
    },
    { arbitrary: fc.record({ kind: fc.constant('sweep' as const), stagger: staggerArb }), weight: 2 },
  )

const racedLabel = (spec: RacedSession): string =>
  `u${spec.user}, ${spec.fresh ? '' : `#${spec.choice} or `}new: place#${spec.place}, ${spec.name}, [${spec.content}]`

const specLabel = (spec: OpSpec): string => {
  const at = spec.stagger > 0 ? ` ~${spec.stagger}` : ''
  switch (spec.kind) {
    case 'upload':
      return `upload(u${spec.user}, place#${spec.place}, ${spec.name}, [${spec.content}${spec.garbage ? ' + garbage' : ''}], base=${spec.base}, proof=${spec.proofBy})${at}`
    case 'completeTwice':
      return `completeTwice(${racedLabel(spec)}${spec.gapMs > 0 ? `, +${spec.gapMs} ms` : ''})${at}`
    case 'abortVsComplete':
      return `abortVsComplete(${racedLabel(spec)}, ${spec.abortFirst ? 'abort' : 'complete'} first${spec.gapMs > 0 ? ` by ${spec.gapMs} ms` : ''})${at}`
    case 'restoreVersion':
      return `restoreVersion(u${spec.user}, ${spec.due ? 'due ' : ''}#${spec.choice}, v#${spec.version})${at}`
    case 'gc':
      return `gc(${spec.orphans ? 'orphans' : ''})${at}`
    case 'sweep':
      return `sweepHistory()${at}`
    default:
      return `${spec.kind}(u${spec.user}, #${spec.choice})${at}`
  }
}

/** The batch command: a clock move, then 2 to 4 operations at once. */
export function batchCommand(command: CommandFactory) {
  return fc
    .record({
      delay: fc.oneof(
        { arbitrary: fc.constant(0), weight: 2 },
        { arbitrary: fc.integer({ min: GC_GRACE_MS, max: 2 * GC_GRACE_MS }), weight: 2 },
        { arbitrary: delayArb, weight: 2 },
      ),
      /** With a collector in the batch, the clock mostly moves a grace period (marks come of age). */
      graceDelay: fc.oneof(fc.integer({ min: GC_GRACE_MS, max: 2 * GC_GRACE_MS }), fc.constant(null)),
      /** With a sweep in the batch, the clock mostly moves some hours (versions come due). */
      sweepDelay: fc.oneof(fc.integer({ min: GC_GRACE_MS, max: 30 * GC_GRACE_MS }), fc.constant(null)),
      specs: fc.array(opSpecArb(), { minLength: 2, maxLength: 4 }),
    })
    .map(({ delay: drawn, graceDelay, sweepDelay, specs }) => {
      const has = (kind: OpSpec['kind']) => specs.some((spec) => spec.kind === kind)
      const delay =
        graceDelay !== null && has('gc')
          ? graceDelay
          : sweepDelay !== null && has('sweep')
            ? sweepDelay
            : drawn
      return command(
        `batch(+${delay} ms, [${specs.map(specLabel).join(' | ')}])`,
        'batch',
        () => true,
        (m, s) => runBatch(m, s, delay, specs),
      )
    })
}

// ---- resolving the drawn operations against the model ------------------------------------

export type Op = { stagger: number; label: string } & (
  | {
      kind: 'upload'
      user: number
      folder: string
      name: string
      content: Content
      baseVersion: number | null
      proofBy: ProofBy
    }
  | { kind: 'completeTwice'; user: number; session: ModelSession; expired: boolean; gapMs: number }
  | {
      kind: 'abortVsComplete'
      user: number
      session: ModelSession
      expired: boolean
      abortFirst: boolean
      gapMs: number
    }
  | { kind: TreeOpKind; user: number; node: string }
  | { kind: 'restoreVersion'; user: number; file: string; version: number }
  | { kind: 'gc'; orphans: boolean }
  | { kind: 'sweep' }
)

/**
 * Picks each operation's target in the model as it is when the batch starts (as a client picks
 * from what it last saw). A complete to be raced is first brought to "every chunk stored and
 * proven", one step at a time, checked as `resume` checks it. At most one collector and one
 * sweep per batch.
 */
async function resolve(m: StorageModel, s: System, specs: readonly OpSpec[]): Promise<Op[]> {
  const ops: Op[] = []
  const raced = new Set<ModelSession>()
  /** An operation with nothing to act on becomes an upload of that user to the root. */
  const instead = (spec: OpSpec & { kind: TreeOpKind | 'restoreVersion' }) => {
    const name = pick(NAMES, spec.choice)
    const content = [spec.choice % POOL.length, (spec.choice >> 3) % POOL.length]
    const label = `upload(u${spec.user}, root, ${name}, [${content}]) instead of ${specLabel(spec)}`
    ops.push({
      kind: 'upload',
      stagger: spec.stagger,
      label,
      user: spec.user,
      folder: ROOT,
      name,
      content,
      baseVersion: null,
      proofBy: 'hmac',
    })
  }
  for (const spec of specs) {
    const label = specLabel(spec)
    const { stagger } = spec
    switch (spec.kind) {
      case 'upload': {
        const folder = targetFolder(m, spec.user, spec.place)
        const baseVersion = baseVersionFor(m, spec.user, folder, spec.name, spec.base)
        const refs = m.refCounts()
        const garbage = [...m.rows]
          .filter(([i, row]) => row.markedAt !== null && (refs.get(i) ?? 0) === 0)
          .map(([i]) => i)
        const content =
          spec.garbage && garbage.length > 0
            ? [pick(garbage, spec.place), ...spec.content].slice(0, MAX_FILE_CHUNKS)
            : spec.content
        ops.push({
          ...spec,
          label: `${label}${content === spec.content ? '' : ` as [${content}]`}`,
          content,
          folder,
          baseVersion,
        })
        break
      }
      case 'completeTwice':
      case 'abortVsComplete': {
        const sessions = m.pausedSessions(spec.user).filter((session) => !raced.has(session))
        const session =
          spec.fresh || sessions.length === 0
            ? await init(
                m,
                s,
                spec.user,
                targetFolder(m, spec.user, spec.place),
                spec.name,
                spec.content,
                null,
              )
            : pick(sessions, spec.choice)
        raced.add(session)
        const expired = m.expired(session)
        if (!expired) await finishChunks(m, s, session)
        if (spec.kind === 'completeTwice')
          ops.push({ kind: spec.kind, stagger, label, user: spec.user, session, expired, gapMs: spec.gapMs })
        else
          ops.push({
            kind: spec.kind,
            stagger,
            label,
            user: spec.user,
            session,
            expired,
            abortFirst: spec.abortFirst,
            gapMs: spec.gapMs,
          })
        break
      }
      case 'deleteFile':
      case 'deleteFolder':
      case 'restoreTrash':
      case 'purge': {
        const targets =
          spec.kind === 'deleteFile'
            ? m.liveFiles(spec.user)
            : spec.kind === 'deleteFolder'
              ? m.liveFolders(spec.user)
              : m.trashRoots(spec.user)
        if (targets.length === 0) {
          instead(spec)
          break
        }
        ops.push({ kind: spec.kind, stagger, label, user: spec.user, node: pick(targets, spec.choice).id })
        break
      }
      case 'restoreVersion': {
        const files = m.liveFiles(spec.user)
        if (files.length === 0) {
          instead(spec)
          break
        }
        const due = files.filter((f) => f.dueAt !== null && f.dueAt <= m.now)
        const file = pick(spec.due && due.length > 0 ? due : files, spec.choice)
        const version = pick(file.versions, spec.version).number
        ops.push({ kind: spec.kind, stagger, label, user: spec.user, file: file.id, version })
        break
      }
      case 'gc':
      case 'sweep':
        if (!ops.some((op) => op.kind === spec.kind)) ops.push({ ...spec, label })
        break
    }
  }
  return ops
}

/** Stores and proves whatever a paused session still lacks, so that a complete can succeed. */
async function finishChunks(m: StorageModel, s: System, session: ModelSession): Promise<void> {
  // Its folder went to the trash since: the session answers 404 until it is restored, and so
  // do the completes the batch will race (predictCompletion).
  if (!m.isLiveFolder(session.user, session.folder)) return
  const view = await s.services.uploads.check(s.users[session.user]!, session.id)
  m.refresh(session)
  expectView(view, session)
  await putChunks(m, s, session, indexesIn(session.states, 'needed'))
  await proveHeld(m, s, session, 'hmac')
  expect(m.missing(session), 'model: a raced session has every chunk').toEqual([])
}

// ---- running them at once -------------------------------------------------------------------

export type Answer<T> = { ok: true; value: T } | { ok: false; code: ErrorCode }

/** The call's value, or the code of the AppError it failed with; any other failure propagates. */
async function attempt<T>(call: Promise<T>): Promise<Answer<T>> {
  try {
    return { ok: true, value: await call }
  } catch (error) {
    if (error instanceof AppError) return { ok: false, code: error.code }
    throw error
  }
}

export const describeAnswer = (answer: Answer<unknown>): string =>
  answer.ok ? (answer.value === undefined ? 'ok' : JSON.stringify(answer.value)) : `error ${answer.code}`

interface Receipt {
  index: number
  chunk: number
  deduplicated: boolean
}

export type Observed =
  | {
      kind: 'upload'
      init: Answer<UploadSessionView>
      receipts: Receipt[]
      busy: number
      /**
       * A chunk PUT or prove answered NOT_FOUND: the folder went to the trash after the init
       * (another operation of the batch), and the upload stopped there.
       */
      folderGone: boolean
      complete: Answer<CompletedUpload> | null
    }
  | { kind: 'completeTwice'; answers: [Answer<CompletedUpload>, Answer<CompletedUpload>] }
  | { kind: 'abortVsComplete'; abort: Answer<void>; complete: Answer<CompletedUpload> }
  | { kind: TreeOpKind | 'restoreVersion'; answer: Answer<unknown> }
  | { kind: 'gc'; report: GcReport }
  | { kind: 'sweep'; report: HistorySweepReport }

/** How long an upload keeps retrying a chunk the collector is deleting (it then stores it anew). */
const BUSY_RETRIES = 500

/** A client's whole upload: declare, send what is needed, prove (or send) what it must, complete. */
async function runUpload(s: System, op: Extract<Op, { kind: 'upload' }>): Promise<Observed> {
  const account = s.users[op.user]!
  const init = await attempt(
    s.services.uploads.init(account, {
      folderId: op.folder === ROOT ? undefined : op.folder,
      filename: op.name,
      size: sizeOf(op.content),
      chunkHashes: op.content.map((i) => POOL_HASHES[i]),
      chunkSizes: op.content.map((i) => POOL[i]!.length),
      baseVersion: op.baseVersion ?? undefined,
    }),
  )
  const observed = {
    kind: 'upload' as const,
    init,
    receipts: [] as Receipt[],
    busy: 0,
    folderGone: false,
    complete: null,
  }
  if (!init.ok) return observed
  const view = init.value
  const put = async (index: number) => {
    const chunk = op.content[index]!
    for (let tries = 0; ; tries++) {
      const receipt = await attempt(
        s.services.uploads.putChunk({
          user: account,
          uploadId: view.uploadId,
          index,
          hash: POOL_HASHES[chunk],
          contentLength: POOL[chunk]!.length,
          body: Readable.from([POOL[chunk]!]),
        }),
      )
      if (receipt.ok) {
        expect(receipt.value, `${op.label}: receipt of chunk ${index}`).toMatchObject({
          index,
          hash: POOL_HASHES[chunk],
        })
        observed.receipts.push({ index, chunk, deduplicated: receipt.value.deduplicated })
        return
      }
      if (receipt.code === 'NOT_FOUND') {
        observed.folderGone = true
        return
      }
      // The collector claimed the chunk before the declaration: it is being deleted this moment.
      if (receipt.code !== 'CHUNK_BUSY' || tries >= BUSY_RETRIES)
        throw new Error(`${op.label}: PUT of chunk ${index} answered ${receipt.code}`)
      observed.busy += 1
      await setTimeout(1)
    }
  }
  for (const index of view.chunksNeeded) if (!observed.folderGone) await put(index)
  if (op.proofBy === 'upload') {
    for (const index of view.chunksToProve) if (!observed.folderGone) await put(index)
  } else if (view.chunksToProve.length > 0 && !observed.folderGone) {
    const proofs = Object.fromEntries(
      view.chunksToProve.map((index) => [String(index), hmacOf(view.proofNonce, POOL[op.content[index]!]!)]),
    )
    const proved = await attempt(s.services.uploads.prove(account, view.uploadId, proofs))
    if (!proved.ok && proved.code !== 'NOT_FOUND')
      throw new Error(`${op.label}: prove answered ${proved.code}`)
    if (!proved.ok) observed.folderGone = true
  }
  return { ...observed, complete: await attempt(s.services.uploads.complete(account, view.uploadId)) }
}

/** Starts `call` after `ms` milliseconds (at once for 0). */
async function after<T>(ms: number, call: () => Promise<T>): Promise<T> {
  if (ms > 0) await setTimeout(ms)
  return call()
}

async function runOp(s: System, op: Op): Promise<Observed> {
  for (let turn = 0; turn < op.stagger; turn++) await setImmediate()
  switch (op.kind) {
    case 'upload':
      return runUpload(s, op)
    case 'completeTwice': {
      const account = s.users[op.user]!
      const complete = () => attempt(s.services.uploads.complete(account, op.session.id))
      const answers = await Promise.all([complete(), after(op.gapMs, complete)])
      return { kind: op.kind, answers }
    }
    case 'abortVsComplete': {
      const account = s.users[op.user]!
      const abort = () => attempt(s.services.uploads.abort(account, op.session.id))
      const complete = () => attempt(s.services.uploads.complete(account, op.session.id))
      if (op.abortFirst) {
        const [a, c] = await Promise.all([abort(), after(op.gapMs, complete)])
        return { kind: op.kind, abort: a, complete: c }
      }
      const [c, a] = await Promise.all([complete(), after(op.gapMs, abort)])
      return { kind: op.kind, abort: a, complete: c }
    }
    case 'deleteFile':
      return { kind: op.kind, answer: await attempt(s.services.files.delete(s.users[op.user]!, op.node)) }
    case 'deleteFolder':
      return { kind: op.kind, answer: await attempt(s.services.folders.delete(s.users[op.user]!, op.node)) }
    case 'restoreTrash':
      return {
        kind: op.kind,
        answer: await attempt(s.services.trash.restore(s.users[op.user]!, op.node).then(({ node }) => node)),
      }
    case 'purge':
      return { kind: op.kind, answer: await attempt(s.services.trash.purge(s.users[op.user]!, op.node)) }
    case 'restoreVersion':
      return {
        kind: op.kind,
        answer: await attempt(s.services.versions.restore(s.users[op.user]!, op.file, op.version)),
      }
    case 'gc':
      return { kind: op.kind, report: await s.services.gc.run({ orphans: op.orphans }) }
    case 'sweep':
      return { kind: op.kind, report: await s.services.history.sweep(s.now) }
  }
}

async function runBatch(m: StorageModel, s: System, delay: number, specs: readonly OpSpec[]): Promise<void> {
  advance(m, s, delay)
  const ops = await resolve(m, s, specs)
  count(`batch.ops.${ops.length}`)
  const before = m.clone()
  const generations = await s.meta.collector.generations(POOL_HASHES)
  const copies = await listCopies(s)
  // Every operation runs to its end before anything is judged (nothing may still be running on
  // a system the test goes on with, or disposes of).
  const settled = await Promise.allSettled(ops.map((op) => runOp(s, op)))
  const failed = settled.find((outcome) => outcome.status === 'rejected')
  if (failed) throw failed.reason
  const observed = settled.map((outcome) => (outcome as PromiseFulfilledResult<Observed>).value)
  await reconcile(m, before, s, ops, observed, { generations, copies })
}

/** The chunk copies on disk, as `<pool index>.<generation>` (for the record when something fails). */
export async function listCopies(s: System): Promise<string[]> {
  const index = new Map(POOL_HASHES.map((hash, i) => [hash, i]))
  const copies: string[] = []
  for await (const blob of s.blobs.list()) copies.push(`${index.get(blob.hash)}.${blob.generation}`)
  return copies.sort()
}

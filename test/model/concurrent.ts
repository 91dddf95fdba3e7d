import { Readable } from 'node:stream'
import { setImmediate, setTimeout } from 'node:timers/promises'
import fc from 'fast-check'
import { expect } from 'vitest'
import { AppError, type ErrorCode } from '../../src/domain/errors.js'
import type { NodeRecord } from '../../src/domain/model.js'
import { versionsToPrune } from '../../src/domain/retention.js'
import type { GcReport } from '../../src/services/garbage-collector.js'
import type { CompletedUpload, UploadSessionView } from '../../src/services/upload-service.js'
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
  folderIdOf,
  hmacOf,
  indexesIn,
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
  type ChunkState,
  type Content,
  contentHash,
  currentOf,
  GC_GRACE_MS,
  type ModelFile,
  type ModelSession,
  NAMES,
  POOL,
  POOL_HASHES,
  ROOT,
  type StorageModel,
  sizeOf,
  UPLOAD_TTL_MS,
} from './model.js'
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
 *   only if its row was not there all along.
 * The model then takes over that outcome, and `verify` checks the whole system exactly.
 */

type TreeOpKind = 'deleteFile' | 'deleteFolder' | 'restoreTrash' | 'purge'

type OpSpec = { stagger: number } & (
  | {
      kind: 'upload'
      user: number
      place: number
      name: string
      content: number[]
      base: Base
      proofBy: ProofBy
    }
  | { kind: 'completeTwice'; user: number; choice: number }
  | { kind: 'abortVsComplete'; user: number; choice: number; abortFirst: boolean }
  | { kind: TreeOpKind; user: number; choice: number }
  | { kind: 'restoreVersion'; user: number; choice: number; version: number }
  | { kind: 'gc'; orphans: boolean }
  | { kind: 'sweep' }
)

const staggerArb = fc.nat({ max: 3 })

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
        stagger: staggerArb,
      }),
      weight: 6,
    },
    {
      arbitrary: fc.record({
        kind: fc.constant('completeTwice' as const),
        user: userArb,
        choice: choiceArb,
        stagger: staggerArb,
      }),
      weight: 2,
    },
    {
      arbitrary: fc.record({
        kind: fc.constant('abortVsComplete' as const),
        user: userArb,
        choice: choiceArb,
        abortFirst: fc.boolean(),
        stagger: staggerArb,
      }),
      weight: 2,
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

const specLabel = (spec: OpSpec): string => {
  const at = spec.stagger > 0 ? ` ~${spec.stagger}` : ''
  switch (spec.kind) {
    case 'upload':
      return `upload(u${spec.user}, place#${spec.place}, ${spec.name}, [${spec.content}], base=${spec.base}, proof=${spec.proofBy})${at}`
    case 'completeTwice':
      return `completeTwice(u${spec.user}, #${spec.choice})${at}`
    case 'abortVsComplete':
      return `abortVsComplete(u${spec.user}, #${spec.choice}${spec.abortFirst ? ', abort first' : ''})${at}`
    case 'restoreVersion':
      return `restoreVersion(u${spec.user}, #${spec.choice}, v#${spec.version})${at}`
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
      specs: fc.array(opSpecArb(), { minLength: 2, maxLength: 4 }),
    })
    .map(({ delay, specs }) =>
      command(
        `batch(+${delay} ms, [${specs.map(specLabel).join(' | ')}])`,
        'batch',
        () => true,
        (m, s) => runBatch(m, s, delay, specs),
      ),
    )
}

// ---- resolving the drawn operations against the model ------------------------------------

type Op = { stagger: number; label: string } & (
  | {
      kind: 'upload'
      user: number
      folder: string
      name: string
      content: Content
      baseVersion: number | null
      proofBy: ProofBy
    }
  | { kind: 'completeTwice'; user: number; session: ModelSession; expired: boolean }
  | { kind: 'abortVsComplete'; user: number; session: ModelSession; expired: boolean; abortFirst: boolean }
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
  const instead = (spec: OpSpec & { user: number; choice: number }) => {
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
        ops.push({ ...spec, label, folder, baseVersion })
        break
      }
      case 'completeTwice':
      case 'abortVsComplete': {
        const sessions = m.pausedSessions(spec.user).filter((session) => !raced.has(session))
        if (sessions.length === 0) {
          instead(spec)
          break
        }
        const session = pick(sessions, spec.choice)
        raced.add(session)
        const expired = m.expired(session)
        if (!expired) await finishChunks(m, s, session)
        if (spec.kind === 'completeTwice')
          ops.push({ kind: spec.kind, stagger, label, user: spec.user, session, expired })
        else
          ops.push({
            kind: spec.kind,
            stagger,
            label,
            user: spec.user,
            session,
            expired,
            abortFirst: spec.abortFirst,
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
        const file = pick(files, spec.choice)
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
  const view = await s.services.uploads.check(s.users[session.user]!, session.id)
  m.refresh(session)
  expectView(view, session)
  await putChunks(m, s, session, indexesIn(session.states, 'needed'))
  await proveHeld(m, s, session, 'hmac')
  expect(m.missing(session), 'model: a raced session has every chunk').toEqual([])
}

// ---- running them at once -------------------------------------------------------------------

type Answer<T> = { ok: true; value: T } | { ok: false; code: ErrorCode }

/** The call's value, or the code of the AppError it failed with; any other failure propagates. */
async function attempt<T>(call: Promise<T>): Promise<Answer<T>> {
  try {
    return { ok: true, value: await call }
  } catch (error) {
    if (error instanceof AppError) return { ok: false, code: error.code }
    throw error
  }
}

const describeAnswer = (answer: Answer<unknown>): string =>
  answer.ok ? JSON.stringify(answer.value) : `error ${answer.code}`

interface Receipt {
  index: number
  chunk: number
  deduplicated: boolean
}

type Observed =
  | {
      kind: 'upload'
      init: Answer<UploadSessionView>
      receipts: Receipt[]
      busy: number
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
  const observed = { kind: 'upload' as const, init, receipts: [] as Receipt[], busy: 0, complete: null }
  if (!init.ok) return observed
  const view = init.value
  const put = async (index: number) => {
    const chunk = op.content[index]!
    for (let tries = 0; ; tries++) {
      const receipt = await attempt(
        s.services.uploads.putChunk(
          account,
          view.uploadId,
          String(index),
          POOL_HASHES[chunk],
          POOL[chunk]!.length,
          Readable.from([POOL[chunk]!]),
        ),
      )
      if (receipt.ok) {
        expect(receipt.value, `${op.label}: receipt of chunk ${index}`).toMatchObject({
          index,
          hash: POOL_HASHES[chunk],
        })
        observed.receipts.push({ index, chunk, deduplicated: receipt.value.deduplicated })
        return
      }
      // The collector claimed the chunk before the declaration: it is being deleted this moment.
      if (receipt.code !== 'CHUNK_BUSY' || tries >= BUSY_RETRIES)
        throw new Error(`${op.label}: PUT of chunk ${index} answered ${receipt.code}`)
      observed.busy += 1
      await setTimeout(1)
    }
  }
  for (const index of view.chunksNeeded) await put(index)
  if (op.proofBy === 'upload') {
    for (const index of view.chunksToProve) await put(index)
  } else if (view.chunksToProve.length > 0) {
    const proofs = Object.fromEntries(
      view.chunksToProve.map((index) => [String(index), hmacOf(view.proofNonce, POOL[op.content[index]!]!)]),
    )
    await s.services.uploads.prove(account, view.uploadId, proofs)
  }
  return { ...observed, complete: await attempt(s.services.uploads.complete(account, view.uploadId)) }
}

async function runOp(s: System, op: Op): Promise<Observed> {
  for (let turn = 0; turn < op.stagger; turn++) await setImmediate()
  switch (op.kind) {
    case 'upload':
      return runUpload(s, op)
    case 'completeTwice': {
      const account = s.users[op.user]!
      const answers = await Promise.all([
        attempt(s.services.uploads.complete(account, op.session.id)),
        attempt(s.services.uploads.complete(account, op.session.id)),
      ])
      return { kind: op.kind, answers }
    }
    case 'abortVsComplete': {
      const account = s.users[op.user]!
      const abort = () => attempt(s.services.uploads.abort(account, op.session.id))
      const complete = () => attempt(s.services.uploads.complete(account, op.session.id))
      if (op.abortFirst) {
        const [a, c] = await Promise.all([abort(), complete()])
        return { kind: op.kind, abort: a, complete: c }
      }
      const [c, a] = await Promise.all([complete(), abort()])
      return { kind: op.kind, abort: a, complete: c }
    }
    case 'deleteFile':
      return { kind: op.kind, answer: await attempt(s.services.files.delete(s.users[op.user]!, op.node)) }
    case 'deleteFolder':
      return { kind: op.kind, answer: await attempt(s.services.folders.delete(s.users[op.user]!, op.node)) }
    case 'restoreTrash':
      return { kind: op.kind, answer: await attempt(s.services.trash.restore(s.users[op.user]!, op.node)) }
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
  // Every operation runs to its end before anything is judged (nothing may still be running on
  // a system the test goes on with, or disposes of).
  const settled = await Promise.allSettled(ops.map((op) => runOp(s, op)))
  const failed = settled.find((outcome) => outcome.status === 'rejected')
  if (failed) throw failed.reason
  const observed = settled.map((outcome) => (outcome as PromiseFulfilledResult<Observed>).value)
  await reconcile(m, before, s, ops, observed, generations)
}

// ---- the trees: an order of the batch's transactions that explains every answer --------------

/** The state one order of the batch is tried on: a copy of the model, and the sessions ended so far. */
interface Trial {
  m: StorageModel
  /** Session id -> the file its first successful complete made or extended. */
  completed: Map<string, { fileId: string; conflict: boolean; version: number }>
  aborted: Set<string>
  sweep: { visited: number; pruned: number; policyChanged: boolean } | null
}

const copyTrial = (trial: Trial): Trial => ({
  m: trial.m.clone(),
  completed: new Map(trial.completed),
  aborted: new Set(trial.aborted),
  sweep: trial.sweep,
})

/** One transaction of the batch, applied at its place in an order; answers why it disagrees. */
interface TreeEvent {
  /** Its place among the batch's events: of two that commute, only the order by index is tried. */
  index: number
  /** Whose tree it changes; null for all of them (the sweep). */
  user: number | null
  label: string
  apply(trial: Trial): string | null
}

const commute = (a: TreeEvent, b: TreeEvent): boolean =>
  a.user !== null && b.user !== null && a.user !== b.user

const sameAnswer = (expected: unknown, actual: unknown): string | null =>
  JSON.stringify(expected) === JSON.stringify(actual)
    ? null
    : `expected ${JSON.stringify(expected)}, got ${JSON.stringify(actual)}`

function expectError(answer: Answer<unknown>, code: ErrorCode): string | null {
  if (answer.ok) return `expected ${code}, but it succeeded: ${describeAnswer(answer)}`
  return answer.code === code ? null : `expected ${code}, got ${answer.code}`
}

/** A complete of `sessionId` answering `answer`: the first to succeed makes the version, any later one answers the same file. */
function completeEvent(
  s: System,
  index: number,
  user: number,
  sessionId: string,
  label: string,
  answer: Answer<CompletedUpload>,
): TreeEvent {
  return {
    index,
    user,
    label,
    apply(trial) {
      const m = trial.m
      const done = trial.completed.get(sessionId)
      if (done) {
        if (!answer.ok) return `a complete after the session was completed answered ${answer.code}`
        const { file, conflict } = answer.value
        if (
          file.id !== done.fileId ||
          conflict !== done.conflict ||
          (file.currentVersion ?? 0) < done.version
        )
          return `a repeated complete answered ${describeAnswer(answer)}, not what ${JSON.stringify(done)} made`
        return null
      }
      if (trial.aborted.has(sessionId)) return expectError(answer, 'UPLOAD_NOT_FOUND')
      const session = m.sessions.find((x) => x.id === sessionId)
      if (!session) throw new Error(`model: session ${sessionId} of ${label} is missing`)
      const predicted = m.predictCompletion(session)
      if (predicted.error !== undefined) return expectError(answer, predicted.error)
      if (!answer.ok) return `expected a completion, got ${answer.code}`
      const { file, conflict } = answer.value
      const mismatch = sameAnswer(
        {
          conflict: predicted.conflict,
          name: predicted.name,
          parent: folderIdOf(s, user, session.folder),
          version: predicted.version,
          size: sizeOf(session.content),
          contentHash: contentHash(session.content),
          id: predicted.existing?.id ?? file.id,
        },
        {
          conflict,
          name: file.name,
          parent: file.parentId,
          version: file.currentVersion,
          size: file.size,
          contentHash: file.contentHash,
          id: file.id,
        },
      )
      if (mismatch) return mismatch
      if (!predicted.existing && m.nodes(user).some((node) => node.id === file.id))
        return `a new file got the id of an existing node ${file.id}`
      m.complete(session, predicted, file.id)
      trial.completed.set(sessionId, { fileId: file.id, conflict, version: predicted.version })
      return null
    },
  }
}

function abortEvent(
  index: number,
  user: number,
  sessionId: string,
  label: string,
  answer: Answer<void>,
): TreeEvent {
  return {
    index,
    user,
    label,
    apply(trial) {
      const session = trial.m.sessions.find((x) => x.id === sessionId)
      if (!session || trial.completed.has(sessionId) || trial.aborted.has(sessionId))
        return expectError(answer, 'UPLOAD_NOT_FOUND')
      if (!answer.ok) return `expected the abort to succeed, got ${answer.code}`
      trial.m.forget(session)
      trial.aborted.add(sessionId)
      return null
    },
  }
}

function treeOpEvent(
  s: System,
  index: number,
  op: Extract<Op, { kind: TreeOpKind | 'restoreVersion' }>,
  answer: Answer<unknown>,
): TreeEvent {
  const { user } = op
  return {
    index,
    user,
    label: op.label,
    apply({ m }) {
      switch (op.kind) {
        case 'deleteFile': {
          const file = m.liveFiles(user).find((f) => f.id === op.node)
          if (!file) return expectError(answer, 'NOT_FOUND')
          if (!answer.ok) return `expected the delete to succeed, got ${answer.code}`
          m.trash(user, file)
          return null
        }
        case 'deleteFolder': {
          const folder = m.liveFolders(user).find((f) => f.id === op.node)
          if (!folder) return expectError(answer, 'NOT_FOUND')
          if (!answer.ok) return `expected the delete to succeed, got ${answer.code}`
          m.trash(user, folder)
          return null
        }
        case 'purge': {
          const node = m.trashRoots(user).find((n) => n.id === op.node)
          if (!node) return expectError(answer, 'NOT_FOUND')
          if (!answer.ok) return `expected the purge to succeed, got ${answer.code}`
          m.purge(user, node)
          return null
        }
        case 'restoreTrash': {
          const node = m.trashRoots(user).find((n) => n.id === op.node)
          if (!node) return expectError(answer, 'NOT_FOUND')
          if (!answer.ok) return `expected the restore to succeed, got ${answer.code}`
          m.restore(user, node)
          const restored = answer.value as NodeRecord
          return sameAnswer(
            [node.id, node.kind, node.name, folderIdOf(s, user, node.parent), null],
            [restored.id, restored.kind, restored.name, restored.parentId, restored.deletedAt],
          )
        }
        case 'restoreVersion': {
          const file = m.liveFiles(user).find((f) => f.id === op.file)
          const source = file?.versions.find((v) => v.number === op.version)
          if (!file || !source) return expectError(answer, 'NOT_FOUND')
          if (!answer.ok) return `expected the version restore to succeed, got ${answer.code}`
          const restored = answer.value as NodeRecord
          const mismatch = sameAnswer(
            [file.id, currentOf(file).number + 1, sizeOf(source.content), contentHash(source.content)],
            [restored.id, restored.currentVersion, restored.size, restored.contentHash],
          )
          if (mismatch) return mismatch
          m.appendVersion(file, source.content)
          return null
        }
      }
    },
  }
}

function sweepEvent(index: number, label: string, report: HistorySweepReport, slack: Slack): TreeEvent {
  return {
    index,
    user: null,
    label,
    apply(trial) {
      const predicted = trial.m.sweepHistory()
      trial.sweep = predicted
      if (report.policyChanged !== predicted.policyChanged)
        return `policyChanged ${report.policyChanged}, expected ${predicted.policyChanged}`
      // The sweep reads which files are due, then visits them one transaction each: an append
      // or purge between the two moves a file in or out of the count, and a purge of a folder
      // may come between the visits of two of its files.
      if (Math.abs(report.visited - predicted.visited) > slack.visited)
        return `visited ${report.visited}, expected ${predicted.visited} ± ${slack.visited}`
      if (Math.abs(report.pruned - predicted.pruned) > slack.pruned)
        return `pruned ${report.pruned}, expected ${predicted.pruned} ± ${slack.pruned}`
      return null
    },
  }
}

interface Slack {
  visited: number
  pruned: number
}

/** The leeway of the sweep's counts: files appended to or purged meanwhile, and what a purge drops. */
function sweepSlack(before: StorageModel, ops: readonly Op[]): Slack {
  let visited = 0
  let pruned = 0
  for (const op of ops) {
    if (op.kind === 'upload' || op.kind === 'completeTwice' || op.kind === 'abortVsComplete') visited += 1
    if (op.kind === 'restoreVersion') visited += 1
    if (op.kind === 'purge') {
      const root = op.node
      const files = before.users[op.user]!.files.filter((f) => f.id === root || f.parent === root)
      visited += files.length
      for (const file of files) pruned += duePrune(before, file)
    }
  }
  return { visited, pruned }
}

/** How many versions of the file a prune at the model's time would drop (a sweep first makes every file due). */
function duePrune(m: StorageModel, file: ModelFile): number {
  if (file.versions.length <= 1) return 0
  const aged = file.versions.map((v) => ({ version: v.number, createdAt: v.createdAt }))
  return versionsToPrune(aged, currentOf(file).number, m.now, m.policy).length
}

/** Every order of the events (up to swaps of commuting neighbours) that explains every answer. */
function explain(start: Trial, events: readonly TreeEvent[]): { trials: Trial[]; rejections: string[] } {
  const trials: Trial[] = []
  const rejections: string[] = []
  let steps = 0
  const explore = (trial: Trial, remaining: readonly TreeEvent[], last: TreeEvent | null, path: string[]) => {
    if (remaining.length === 0) {
      trials.push(trial)
      return
    }
    for (const event of remaining) {
      if (last && commute(last, event) && event.index < last.index) continue
      if (++steps > 50_000) throw new Error('model: too many orders to try for one batch')
      const next = copyTrial(trial)
      const mismatch = event.apply(next)
      if (mismatch) {
        if (rejections.length < 12) rejections.push(`${[...path, event.label].join(' ; ')}: ${mismatch}`)
        continue
      }
      explore(
        next,
        remaining.filter((e) => e !== event),
        event,
        [...path, event.label],
      )
    }
  }
  explore(start, events, null, [])
  return { trials, rejections }
}

/** The model's state, as text: two orders that end alike are one outcome. */
const signature = (m: StorageModel): string =>
  JSON.stringify({
    users: m.users,
    sessions: [...m.sessions].sort((a, b) => (a.id < b.id ? -1 : 1)),
    completed: [...m.completedExpiries].sort(),
    rows: [...m.rows].sort((a, b) => a[0] - b[0]),
    policy: m.policyAdopted,
  })

/** Each node's existence, place, trash time and versions, as the model has them... */
function projectModel(s: System, m: StorageModel, ids: readonly string[]) {
  return ids.map((id) => {
    for (const [u, user] of m.users.entries()) {
      const node = [...user.folders, ...user.files].find((n) => n.id === id)
      if (!node) continue
      const versions =
        node.kind === 'file' ? node.versions.map((v) => [v.number, contentHash(v.content)]) : []
      return [id, node.name, folderIdOf(s, u, node.parent), node.deletedAt, versions]
    }
    return [id, null]
  })
}

/** ...and as the system has them. */
async function projectSystem(s: System, ids: readonly string[]) {
  return Promise.all(
    ids.map(async (id) => {
      const node = await s.meta.nodes.findAnyState(id)
      if (!node) return [id, null]
      const versions = (await s.meta.versions.list(id)).reverse().map((v) => [v.version, v.contentHash])
      return [id, node.name, node.parentId, node.deletedAt, node.kind === 'file' ? versions : []]
    }),
  )
}

// ---- reconciling --------------------------------------------------------------------------

async function reconcile(
  m: StorageModel,
  before: StorageModel,
  s: System,
  ops: readonly Op[],
  observed: readonly Observed[],
  generations: ReadonlyMap<string, string>,
): Promise<void> {
  const now = m.now
  const gcAt = ops.findIndex((op) => op.kind === 'gc')
  const gcOp = gcAt < 0 ? null : (ops[gcAt] as Extract<Op, { kind: 'gc' }>)
  const gcReport = gcAt < 0 ? null : (observed[gcAt] as Extract<Observed, { kind: 'gc' }>).report
  const uploads = ops.flatMap((op, i) =>
    op.kind === 'upload' ? [{ op, seen: observed[i] as Extract<Observed, { kind: 'upload' }> }] : [],
  )

  // -- chunk rows: which the collector deleted (gone, or stored anew under another generation),
  // which the batch stored (new, or a new generation).
  const after = await s.meta.collector.generations(POOL_HASHES)
  const swept = [...before.rows.keys()].filter(
    (i) => after.get(POOL_HASHES[i]!) !== generations.get(POOL_HASHES[i]!),
  )
  const stored = POOL_HASHES.flatMap((hash, i) =>
    after.has(hash) && after.get(hash) !== generations.get(hash) ? [i] : [],
  )
  expect([...before.rows.keys()].sort(), 'model: rows before the batch').toEqual(
    POOL_HASHES.flatMap((hash, i) => (generations.has(hash) ? [i] : [])).sort(),
  )
  // Each chunk stored anew was stored by exactly one PUT; every other PUT found it there.
  const firstPuts = uploads.flatMap(({ seen }) =>
    seen.receipts.filter((r) => !r.deduplicated).map((r) => r.chunk),
  )
  expect(
    firstPuts.sort((a, b) => a - b),
    'PUTs that stored a chunk (not a dedup hit)',
  ).toEqual(stored)

  // Sessions the batch ends: raced completes (their chunks named until a version references
  // them, in one transaction) and aborts that won (named until then); sessions it starts.
  const racing = new Map<string, 'completes' | 'maybe'>()
  ops.forEach((op, i) => {
    if ((op.kind === 'completeTwice' || op.kind === 'abortVsComplete') && !op.expired) {
      const seen = observed[i]!
      const completes = seen.kind === 'completeTwice' || (seen.kind === 'abortVsComplete' && seen.complete.ok)
      racing.set(op.session.id, completes ? 'completes' : 'maybe')
    }
  })
  const uploadChunks = new Set(uploads.filter(({ seen }) => seen.init.ok).flatMap(({ op }) => op.content))

  // What the collector may delete: unreferenced chunks marked a grace period ago, once expired
  // sessions are gone, that no session lasting through the batch names (nor a raced complete);
  // what it must: those that no session of the batch could have named either.
  const g = before.clone()
  g.sweepExpiredUploads()
  const chunksOfSessions = (keep: (id: string) => boolean) =>
    new Set(g.sessions.filter((x) => x.inDb && keep(x.id)).flatMap((x) => x.content))
  const names: Names = {
    lasting: chunksOfSessions((id) => !racing.has(id)),
    completing: chunksOfSessions((id) => racing.get(id) === 'completes'),
    maybe: new Set([...uploadChunks, ...chunksOfSessions((id) => racing.get(id) === 'maybe')]),
  }
  const refs = g.refCounts()
  const cutoff = now - GC_GRACE_MS
  const garbage = [...g.rows]
    .filter(
      ([i, row]) =>
        (refs.get(i) ?? 0) === 0 &&
        row.markedAt !== null &&
        row.markedAt <= cutoff &&
        !names.lasting.has(i) &&
        !names.completing.has(i),
    )
    .map(([i]) => i)
  const maybeNamed = names.maybe
  const mustSweep = gcOp ? garbage.filter((i) => !maybeNamed.has(i)) : []
  const maySweep = gcOp ? garbage : []
  expect(
    swept.filter((i) => !maySweep.includes(i)),
    'chunks deleted that were not garbage',
  ).toEqual([])
  expect(
    mustSweep.filter((i) => !swept.includes(i)),
    'garbage the collector left',
  ).toEqual([])
  for (const i of maySweep.filter((i) => maybeNamed.has(i)))
    count(swept.includes(i) ? 'race.collectorFirst' : 'race.uploadFirst')

  // -- the trees: the start state has the rows as they are now and the batch's new sessions.
  const start: Trial = { m: before.clone(), completed: new Map(), aborted: new Set(), sweep: null }
  for (const i of swept) start.m.rows.delete(i)
  for (const i of stored) start.m.rows.set(i, { markedAt: null })
  const newSessions = new Map<string, ModelSession>()
  for (const { op, seen } of uploads) {
    if (!seen.init.ok) continue
    const view = seen.init.value
    const session: ModelSession = {
      id: view.uploadId,
      user: op.user,
      folder: op.folder,
      filename: op.name,
      content: op.content,
      baseVersion: op.baseVersion,
      states: op.content.map(() => 'ok' as ChunkState),
      expiresAt: now + UPLOAD_TTL_MS,
      nonce: view.proofNonce,
      inDb: true,
      known: true,
    }
    start.m.sessions.push(session)
    newSessions.set(session.id, session)
  }

  const events: TreeEvent[] = []
  const slack = sweepSlack(before, ops)
  ops.forEach((op, i) => {
    const seen = observed[i]!
    const at = events.length
    switch (op.kind) {
      case 'upload': {
        const upload = seen as Extract<Observed, { kind: 'upload' }>
        if (!upload.init.ok) return
        const session = upload.init.value.uploadId
        events.push(completeEvent(s, at, op.user, session, `${op.label}.complete`, upload.complete!))
        return
      }
      case 'completeTwice': {
        if (op.expired) return
        const { answers } = seen as Extract<Observed, { kind: 'completeTwice' }>
        events.push(completeEvent(s, at, op.user, op.session.id, `${op.label}.complete#1`, answers[0]))
        events.push(completeEvent(s, at + 1, op.user, op.session.id, `${op.label}.complete#2`, answers[1]))
        return
      }
      case 'abortVsComplete': {
        if (op.expired) return
        const race = seen as Extract<Observed, { kind: 'abortVsComplete' }>
        events.push(abortEvent(at, op.user, op.session.id, `${op.label}.abort`, race.abort))
        events.push(completeEvent(s, at + 1, op.user, op.session.id, `${op.label}.complete`, race.complete))
        return
      }
      case 'gc':
        return
      case 'sweep':
        events.push(sweepEvent(at, op.label, (seen as Extract<Observed, { kind: 'sweep' }>).report, slack))
        return
      default:
        events.push(treeOpEvent(s, at, op, (seen as { answer: Answer<unknown> }).answer))
    }
  })

  // Upload steps that fail the same way in every order.
  ops.forEach((op, i) => {
    const seen = observed[i]!
    if (op.kind === 'upload') {
      const upload = seen as Extract<Observed, { kind: 'upload' }>
      if (upload.init.ok) {
        const complete = upload.complete!
        if (!complete.ok && complete.code !== 'NOT_FOUND')
          throw new Error(`${op.label}: complete answered ${complete.code}`)
        return
      }
      // Its folder went to the trash (only another operation of the batch can have done that).
      expect(upload.init.code, `${op.label}: init`).toBe('NOT_FOUND')
      const trashedBy = ops.some((other) => other.kind === 'deleteFolder' && other.node === op.folder)
      expect(trashedBy, `${op.label}: init found no folder, yet none was deleted`).toBe(true)
      count('batch.init.folderGone')
    }
    if ((op.kind === 'completeTwice' || op.kind === 'abortVsComplete') && op.expired) {
      const answers =
        seen.kind === 'completeTwice'
          ? seen.answers
          : [
              (seen as Extract<Observed, { kind: 'abortVsComplete' }>).abort,
              (seen as Extract<Observed, { kind: 'abortVsComplete' }>).complete,
            ]
      for (const answer of answers)
        expect(expectError(answer, 'UPLOAD_NOT_FOUND'), `${op.label} (expired)`).toBeNull()
      count('batch.expiredRace')
    }
  })

  const { trials, rejections } = explain(start, events)
  if (trials.length === 0) {
    throw new Error(
      `no order of the batch explains its answers:\n  ${ops
        .map((op, i) => `${op.label} -> ${describeObserved(observed[i]!)}`)
        .join('\n  ')}\nrejected orders (first ${rejections.length}):\n  ${rejections.join('\n  ')}`,
    )
  }
  const outcomes = new Map<string, Trial>()
  for (const trial of trials) outcomes.set(signature(trial.m), trial)
  let chosen = [...outcomes.values()]
  if (chosen.length > 1) {
    count('batch.outcomesToTellApart')
    const ids = [
      ...new Set(
        chosen.flatMap((t) => t.m.users.flatMap((u) => [...u.folders, ...u.files].map((n) => n.id))),
      ),
    ]
    const actual = JSON.stringify(await projectSystem(s, ids))
    chosen = chosen.filter((t) => JSON.stringify(projectModel(s, t.m, ids)) === actual)
    if (chosen.length === 0) throw new Error(`no order of the batch leaves the trees as they are: ${actual}`)
  }
  count(`batch.orders.${Math.min(trials.length, 5)}${trials.length > 5 ? '+' : ''}`)
  const f = chosen[0]!.m

  // -- what each upload was told, against what its user held.
  checkDeclarations(before, f, uploads, swept)

  // -- raced sessions.
  ops.forEach((op, i) => {
    const seen = observed[i]!
    if (op.kind === 'completeTwice' && !op.expired && seen.kind === 'completeTwice') {
      const [a, b] = seen.answers
      if (a.ok && b.ok)
        count(a.value.file.id === b.value.file.id ? 'completeTwice.sameFile' : 'completeTwice.DIFFERENT')
      else if (a.ok || b.ok) count('completeTwice.oneFailedOneSucceeded')
      else count(`completeTwice.bothFailed.${a.code}`)
    }
    if (op.kind === 'abortVsComplete' && !op.expired && seen.kind === 'abortVsComplete') {
      expect(
        seen.abort.ok !== seen.complete.ok,
        `${op.label}: exactly one of abort and complete succeeds`,
      ).toBe(true)
      count(seen.abort.ok ? 'abortVsComplete.abortWon' : 'abortVsComplete.completeWon')
    }
    if ((op.kind === 'completeTwice' || op.kind === 'abortVsComplete') && op.expired) {
      // The client learns it expired (as `expectExpired` records it).
      const session = f.sessions.find((x) => x.id === op.session.id)
      if (session) session.known = false
      if (session && !session.inDb) f.forget(session)
    }
  })
  for (const { seen } of uploads) {
    if (!seen.init.ok || !seen.complete) continue
    count(seen.complete.ok ? 'batch.upload.completed' : `batch.upload.${seen.complete.code}`)
    count('batch.put.busyRetries', seen.busy)
  }
  // Uploads whose complete failed stay as paused sessions, as the server recorded their chunks.
  for (const session of f.sessions.filter((x) => newSessions.has(x.id))) {
    const chunks = await s.meta.uploads.chunks(session.id)
    session.states = chunks.map((c) => c.state)
    expect(session.states, `${session.id}: every chunk was stored or proven`).toEqual(
      session.content.map(() => 'ok'),
    )
  }

  // -- the collector's own report.
  if (gcOp && gcReport) {
    const expiredUploads = f.sweepExpiredUploads() + f.removeExpiredCompletions()
    const marks = await s.marks()
    const marked = adoptMarks(before, f, marks, stored, true)
    const orphans = await reconcileOrphans(s, before, f, after, gcOp.orphans, names)
    expect({ ...gcReport, durationMs: 0, marked: 0 }, 'gc report (the marks are checked below)').toEqual({
      dryRun: false,
      expiredUploads,
      resumed: 0,
      swept: swept.length,
      sweptBytes: swept.reduce((sum, i) => sum + POOL[i]!.length, 0),
      marked: 0,
      orphans,
      errors: [],
      durationMs: 0,
    })
    expect(gcReport.marked, 'gc report: marked, at least those still marked now').toBeGreaterThanOrEqual(
      marked.least,
    )
    expect(
      gcReport.marked,
      'gc report: marked, at most those also unreferenced for a while',
    ).toBeLessThanOrEqual(marked.most)
    count('gc.swept', swept.length)
    count('batch.gc')
  } else {
    expect(swept, 'chunks deleted without a collector').toEqual([])
    adoptMarks(before, f, await s.marks(), stored, false)
    await reconcileOrphans(s, before, f, after, false, names)
  }
  const sweepAt = ops.findIndex((op) => op.kind === 'sweep')
  if (sweepAt >= 0) {
    const report = (observed[sweepAt] as Extract<Observed, { kind: 'sweep' }>).report
    count('sweep.visited', report.visited)
    count('sweep.pruned', report.pruned)
    count('batch.sweep')
  }
  count('batch')
  m.replaceWith(f)
}

function describeObserved(seen: Observed): string {
  switch (seen.kind) {
    case 'upload':
      return `init ${seen.init.ok ? seen.init.value.uploadId : seen.init.code}, receipts ${JSON.stringify(seen.receipts)}, complete ${seen.complete ? describeAnswer(seen.complete) : '-'}`
    case 'completeTwice':
      return seen.answers.map(describeAnswer).join(' / ')
    case 'abortVsComplete':
      return `abort ${describeAnswer(seen.abort)}, complete ${describeAnswer(seen.complete)}`
    case 'gc':
    case 'sweep':
      return JSON.stringify(seen.report)
    default:
      return describeAnswer(seen.answer)
  }
}

/**
 * The chunk states each upload's declaration was answered with. `ok` (no proof asked) only for
 * a chunk its user held in some file then: before the batch, or by a complete of the batch
 * (anything else is the "Dropship" hole). `needed` only for a chunk without a row at some
 * moment: none before, or deleted by the collector. `prove` only for a chunk that had a row at
 * some moment, and that its user did not hold all along.
 */
function checkDeclarations(
  before: StorageModel,
  after: StorageModel,
  uploads: readonly { op: Extract<Op, { kind: 'upload' }>; seen: Extract<Observed, { kind: 'upload' }> }[],
  swept: readonly number[],
): void {
  const chunksOf = (m: StorageModel, user: number) =>
    new Map(
      m.users[user]!.files.flatMap((f) => f.versions.map((v) => [`${f.id}/${v.number}`, v.content] as const)),
    )
  for (const { op, seen } of uploads) {
    if (!seen.init.ok) continue
    const view = seen.init.value
    const states: ChunkState[] = op.content.map((_, index) =>
      view.chunksNeeded.includes(index) ? 'needed' : view.chunksToProve.includes(index) ? 'prove' : 'ok',
    )
    const earlier = chunksOf(before, op.user)
    const later = chunksOf(after, op.user)
    const heldBefore = new Set([...earlier.values()].flat())
    const heldThroughout = new Set(
      [...earlier].filter(([key]) => later.has(key)).flatMap(([, content]) => content),
    )
    // Chunks of versions made in the batch by a complete of this user.
    const made = new Set([...later].filter(([key]) => !earlier.has(key)).flatMap(([, content]) => content))
    const hadRowAllAlong = (i: number) => before.rows.has(i) && !swept.includes(i)
    op.content.forEach((i, index) => {
      const state = states[index]!
      const where = `${op.label}: declared chunk ${index} (pool #${i}) is ${state}`
      if (state === 'ok')
        expect(heldBefore.has(i) || made.has(i), `${where}, but its user never held it`).toBe(true)
      if (state === 'needed')
        expect(hadRowAllAlong(i), `${where}, but its row was there all along`).toBe(false)
      if (state === 'prove') {
        expect(before.rows.has(i) || after.rows.has(i), `${where}, but it never had a row`).toBe(true)
        expect(heldThroughout.has(i), `${where}, but its user held it all along`).toBe(false)
      }
      count(`batch.init.${state}`)
    })
    // One classification per hash.
    for (const [index, i] of op.content.entries())
      expect(states[index], `${op.label}: chunk ${index} classified like its twins`).toBe(
        states[op.content.indexOf(i)],
      )
    expect([view.totalChunks, view.expiresAt], `${op.label}: session`).toEqual([
      op.content.length,
      after.now + UPLOAD_TTL_MS,
    ])
  }
}

/**
 * Takes over the collector's marks as they are, once checked: each is what the model has (a
 * reference clears a mark; nothing else moves one), or, with a collector in the batch, now for
 * a row unreferenced and unmarked in the model (the mark came while it was unreferenced).
 * Answers the bounds of what the collector can have reported marking.
 */
function adoptMarks(
  before: StorageModel,
  f: StorageModel,
  marks: ReadonlyMap<string, number | null>,
  stored: readonly number[],
  collected: boolean,
): { least: number; most: number } {
  expect([...marks.keys()].sort(), 'live rows').toEqual([...f.rows.keys()].map((i) => POOL_HASHES[i]!).sort())
  const refs = f.refCounts()
  const refsBefore = before.refCounts()
  const dropped = new Set<number>()
  for (const file of before.allFiles()) {
    const still = f.allFiles().find((x) => x.id === file.id)
    for (const v of file.versions)
      if (!still?.versions.some((w) => w.number === v.number)) for (const i of v.content) dropped.add(i)
  }
  let least = 0
  let most = 0
  for (const [i, row] of f.rows) {
    const mark = marks.get(POOL_HASHES[i]!)!
    const unreferenced = (refs.get(i) ?? 0) === 0
    if (mark === row.markedAt) {
      // Perhaps marked while unreferenced and unmarked, and referenced again within the batch.
      const unmarkedGarbage =
        stored.includes(i) ||
        (((refsBefore.get(i) ?? 0) === 0 || dropped.has(i)) && before.rows.get(i)?.markedAt === null)
      if (collected && !unreferenced && unmarkedGarbage) most += 1
      continue
    }
    const markedNow = collected && row.markedAt === null && unreferenced && mark === f.now
    expect(markedNow, `mark of chunk ${i}: ${mark}, the model has ${row.markedAt}`).toBe(true)
    row.markedAt = mark
    least += 1
    most += 1
  }
  return { least, most }
}

/** Chunks named by upload sessions, once the collector has removed the expired ones. */
interface Names {
  /** By sessions the batch leaves alone. */
  lasting: Set<number>
  /** By sessions a raced complete ends (the chunk list is dropped as the version references them). */
  completing: Set<number>
  /** By sessions the batch starts, or an abort ends: named for some of the batch, or none. */
  maybe: Set<number>
}

/**
 * The orphan copies (bytes no row names) left: never new ones (a losing PUT deletes its copy);
 * with an orphan walk in the batch, it deletes those no lasting session names, and at most also
 * those a session of the batch named. Answers how many went.
 */
async function reconcileOrphans(
  s: System,
  before: StorageModel,
  f: StorageModel,
  rowCopies: ReadonlyMap<string, string>,
  walked: boolean,
  names: Names,
): Promise<number> {
  const left = new Set<number>()
  const index = new Map(POOL_HASHES.map((hash, i) => [hash, i]))
  for await (const blob of s.blobs.list())
    if (rowCopies.get(blob.hash) !== blob.generation) left.add(index.get(blob.hash)!)
  expect(
    [...left].filter((i) => !before.orphans.has(i)),
    'orphan copies the batch left',
  ).toEqual([])
  const gone = [...before.orphans].filter((i) => !left.has(i))
  const mayGo = walked ? [...before.orphans].filter((i) => !names.lasting.has(i)) : []
  const mustGo = mayGo.filter((i) => !names.maybe.has(i) && !names.completing.has(i))
  expect(
    gone.filter((i) => !mayGo.includes(i)),
    'orphan copies deleted though a session named them',
  ).toEqual([])
  expect(
    mustGo.filter((i) => !gone.includes(i)),
    'orphan copies the walk left',
  ).toEqual([])
  f.orphans = left
  return gone.length
}

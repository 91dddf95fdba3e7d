import type { ErrorCode } from '../../src/domain/errors.js'
import type { NodeRecord } from '../../src/domain/model.js'
import { versionsToPrune } from '../../src/domain/retention.js'
import type { CompletedUpload } from '../../src/services/uploads/upload-service.js'
import type { HistorySweepReport } from '../../src/services/version-history.js'
import { folderIdOf } from './commands.js'
import { type Answer, describeAnswer, type Op, type TreeOpKind } from './concurrent.js'
import { contentHash, currentOf, type ModelFile, type StorageModel, sizeOf } from './model.js'
import type { System } from './system.js'

/**
 * The trees after a concurrent batch: an order of the batch's transactions (each complete,
 * abort, delete, restore, purge and version restore is one; a history sweep is taken as one)
 * that explains every answer. Every order is tried on a copy of the model, except that of two
 * neighbouring steps of different users (which commute) only the order by index is tried.
 */

/** The state one order of the batch is tried on: a copy of the model, and the sessions ended so far. */
export interface Made {
  fileId: string
  conflict: boolean
  version: number
  size: number
  contentHash: string
}

export interface Trial {
  m: StorageModel
  /** Session id -> what its first successful complete made: the file, as that version. */
  completed: Map<string, Made>
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
export interface TreeEvent {
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

export function expectError(answer: Answer<unknown>, code: ErrorCode): string | null {
  if (answer.ok) return `expected ${code}, but it succeeded: ${describeAnswer(answer)}`
  return answer.code === code ? null : `expected ${code}, got ${answer.code}`
}

/** A complete of `sessionId` answering `answer`: the first to succeed makes the version, any later one answers the same file. */
export function completeEvent(
  s: System,
  index: number,
  user: number,
  sessionId: string,
  label: string,
  answer: Answer<CompletedUpload>,
  /**
   * The session's chunks were collected in the batch: a complete that read the session before
   * an abort won, and checked its chunks after the collector took them, answers CHUNKS_MISSING
   * (rather than UPLOAD_NOT_FOUND; tolerated, and counted).
   */
  collectedAfterAbort = false,
): TreeEvent {
  return {
    index,
    user,
    label,
    apply(trial) {
      const m = trial.m
      const done = trial.completed.get(sessionId)
      if (done) {
        // However the race went, a complete that lost to another answers what that one made,
        // as that version (services/uploads/commit.ts, `complete`); 404 once the file is purged.
        if (!m.nodes(user).some((node) => node.id === done.fileId)) return expectError(answer, 'NOT_FOUND')
        if (!answer.ok)
          return `a complete that lost to another answered ${answer.code}, not the file ${done.fileId} the winner made`
        const { file, conflict } = answer.value
        return sameAnswer(done, {
          fileId: file.id,
          conflict,
          version: file.currentVersion,
          size: file.size,
          contentHash: file.contentHash,
        })
      }
      if (trial.aborted.has(sessionId)) {
        if (collectedAfterAbort && !answer.ok && answer.code === 'CHUNKS_MISSING') return null
        return expectError(answer, 'UPLOAD_NOT_FOUND')
      }
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
      trial.completed.set(sessionId, {
        fileId: file.id,
        conflict,
        version: predicted.version,
        size: sizeOf(session.content),
        contentHash: contentHash(session.content),
      })
      return null
    },
  }
}

export function abortEvent(
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

export function treeOpEvent(
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

export function sweepEvent(
  index: number,
  label: string,
  report: HistorySweepReport,
  slack: Slack,
): TreeEvent {
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

export interface Slack {
  visited: number
  pruned: number
}

/** The leeway of the sweep's counts: files appended to or purged meanwhile, and what a purge drops. */
export function sweepSlack(before: StorageModel, ops: readonly Op[]): Slack {
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
export function explain(
  start: Trial,
  events: readonly TreeEvent[],
): { trials: Trial[]; rejections: string[]; tried: number } {
  const trials: Trial[] = []
  const rejections: string[] = []
  // Orders that reach the same state with the same steps left go on alike: tried once.
  const seen = new Set<string>()
  let tried = 0
  const explore = (trial: Trial, remaining: readonly TreeEvent[], last: TreeEvent | null, path: string[]) => {
    if (remaining.length === 0) {
      trials.push(trial)
      return
    }
    const key = JSON.stringify([
      remaining.map((e) => e.index),
      last?.index,
      signature(trial.m),
      [...trial.completed],
      [...trial.aborted],
      trial.sweep,
    ])
    if (seen.has(key)) return
    seen.add(key)
    for (const event of remaining) {
      if (last && commute(last, event) && event.index < last.index) continue
      if (++tried > 20_000) throw new Error('model: too many orders to try for one batch')
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
  return { trials, rejections, tried }
}

const byId = (a: { id: string }, b: { id: string }) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0)

/** The model's state, as text: two orders that end alike are one outcome (lists in any order). */
export const signature = (m: StorageModel): string =>
  JSON.stringify({
    users: m.users.map((user) => ({
      files: [...user.files].sort(byId),
      folders: [...user.folders].sort(byId),
    })),
    sessions: [...m.sessions].sort(byId),
    completed: [...m.completedExpiries].sort(),
    rows: [...m.rows].sort((a, b) => a[0] - b[0]),
    policy: m.policyAdopted,
  })

/** Each node's existence, place, trash time and versions, as the model has them... */
export function projectModel(s: System, m: StorageModel, ids: readonly string[]) {
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
export async function projectSystem(s: System, ids: readonly string[]) {
  return Promise.all(
    ids.map(async (id) => {
      const node = await s.meta.nodes.findAnyState(id)
      if (!node) return [id, null]
      const versions = (await s.meta.versions.list(id)).reverse().map((v) => [v.version, v.contentHash])
      return [id, node.name, node.parentId, node.deletedAt, node.kind === 'file' ? versions : []]
    }),
  )
}

import { expect } from 'vitest'
import { count } from './commands.js'
import { type Answer, describeAnswer, listCopies, type Observed, type Op } from './concurrent.js'
import {
  type ChunkState,
  currentOf,
  GC_GRACE_MS,
  type ModelSession,
  POOL,
  POOL_HASHES,
  type StorageModel,
  UPLOAD_TTL_MS,
} from './model.js'
import {
  abortEvent,
  completeEvent,
  expectError,
  explain,
  projectModel,
  projectSystem,
  signature,
  sweepEvent,
  sweepSlack,
  type TreeEvent,
  type Trial,
  treeOpEvent,
} from './orders.js'
import type { System } from './system.js'

/**
 * After a concurrent batch: reads back what happened, checks it against the outcomes the model
 * allows (see concurrent.ts), and brings the model in line with the one that happened.
 */

export async function reconcile(
  m: StorageModel,
  before: StorageModel,
  s: System,
  ops: readonly Op[],
  observed: readonly Observed[],
  /** The chunk rows' generations and the copies on disk just before the batch. */
  start0: { generations: ReadonlyMap<string, string>; copies: readonly string[] },
): Promise<void> {
  const { generations } = start0
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
      // Both completes failed (its folder is gone): the session is as it was, and lasts.
      if (seen.kind === 'completeTwice' && !seen.answers.some((answer) => answer.ok)) return
      const completes = seen.kind === 'completeTwice' || (seen.kind === 'abortVsComplete' && seen.complete.ok)
      racing.set(op.session.id, completes ? 'completes' : 'maybe')
    }
  })
  const uploadChunks = new Set(uploads.filter(({ seen }) => seen.init.ok).flatMap(({ op }) => op.content))

  // Sessions whose end in the batch releases their chunks (StorageModel.release): aborts that
  // won, and with a collector the sessions expired when it began (it removes them first).
  const abortedIds = new Set(
    ops.flatMap((op, i) => {
      const seen = observed[i]!
      return op.kind === 'abortVsComplete' && !op.expired && seen.kind === 'abortVsComplete' && seen.abort.ok
        ? [op.session.id]
        : []
    }),
  )
  const abortedChunks = new Set(before.sessions.filter((x) => abortedIds.has(x.id)).flatMap((x) => x.content))
  const expiredChunks = new Set(
    gcOp ? before.sessions.filter((x) => x.inDb && x.expiresAt <= now).flatMap((x) => x.content) : [],
  )
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
  // An abort's release may come before the collector's claim, and its session's end too (g
  // releases what the collector's own expiry sweep does, which comes first).
  const abortReleased = [...abortedChunks].filter(
    (i) =>
      before.rows.get(i)?.neverReferenced === true &&
      !garbage.includes(i) &&
      !names.lasting.has(i) &&
      !names.completing.has(i),
  )
  const maySweep = gcOp ? [...garbage, ...abortReleased] : []
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
  if (gcOp)
    for (const i of abortReleased)
      count(swept.includes(i) ? 'release.sweptAfterAbort' : 'release.keptByAbort')

  // -- the trees: the start state has the rows as they are now and the batch's new sessions.
  const start: Trial = { m: before.clone(), completed: new Map(), aborted: new Set(), sweep: null }
  for (const i of swept) start.m.rows.delete(i)
  for (const i of stored) start.m.rows.set(i, { markedAt: null, neverReferenced: true })
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
        const collected = op.session.content.some((i) => swept.includes(i))
        events.push(
          completeEvent(s, at + 1, op.user, op.session.id, `${op.label}.complete`, race.complete, collected),
        )
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
      const trashedBy = ops.some((other) => other.kind === 'deleteFolder' && other.node === op.folder)
      if (upload.init.ok) {
        const complete = upload.complete!
        if (!complete.ok && complete.code !== 'NOT_FOUND')
          throw new Error(`${op.label}: complete answered ${complete.code}`)
        if (upload.folderGone) {
          // A PUT or prove found the folder gone: only another operation of the batch can have
          // trashed it, and then complete finds it gone too.
          expect(trashedBy, `${op.label}: a PUT found no folder, yet none was deleted`).toBe(true)
          expect(complete.ok, `${op.label}: completed after a PUT found no folder`).toBe(false)
          count('batch.put.folderGone')
        }
        return
      }
      // Its folder went to the trash (only another operation of the batch can have done that).
      expect(upload.init.code, `${op.label}: init`).toBe('NOT_FOUND')
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
  count(`batch.outcomesExplaining.${Math.min(chosen.length, 3)}${chosen.length > 3 ? '+' : ''}`)
  if (chosen.length > 1) {
    const ids = [
      ...new Set(
        chosen.flatMap((t) => t.m.users.flatMap((u) => [...u.folders, ...u.files].map((n) => n.id))),
      ),
    ]
    const actual = JSON.stringify(await projectSystem(s, ids))
    chosen = chosen.filter((t) => JSON.stringify(projectModel(s, t.m, ids)) === actual)
    if (chosen.length === 0) throw new Error(`no order of the batch leaves the trees as they are: ${actual}`)
    // Alike in every node and version; they could differ only in what no answer shows.
    if (chosen.length > 1) {
      const [a, b] = chosen.map((t) => JSON.parse(signature(t.m)) as Record<string, unknown>)
      const differ = Object.keys(a!).filter((key) => JSON.stringify(a![key]) !== JSON.stringify(b![key]))
      count(`batch.outcomesAlikeBut.${differ.join('+')}`)
    }
  }
  const f = chosen[0]!.m

  /**
   * The chunks the batch's session ends may have marked at the epoch: those an ended session
   * named whose row no version had named when the batch began and the collector left, and, for
   * the collector's expiry sweep, rows the batch made before it (a row the collector deleted and
   * the batch made again came after both: an abort's release comes before its session's end,
   * which comes before the claim). They must have been when no version named the row in the
   * batch either (its release found it so, and only a reference clears a mark). The collector
   * may have marked one before an abort released it.
   */
  const released = (): Releases => {
    const unnamedAllAlong = (i: number) => before.rows.get(i)?.neverReferenced === true && !swept.includes(i)
    const byAbort = [...abortedChunks].filter(unnamedAllAlong)
    const byExpiry = [...expiredChunks].filter(
      (i) => unnamedAllAlong(i) || (!before.rows.has(i) && stored.includes(i)),
    )
    const may = new Set([...byAbort, ...byExpiry])
    const must = new Set(
      [...may].filter((i) => unnamedAllAlong(i) && f.rows.get(i)?.neverReferenced === true),
    )
    count('release.mayInBatch', may.size)
    count('release.mustInBatch', must.size)
    return { may, must, afterMark: new Set(byAbort) }
  }

  // A retry of each complete that succeeded, after the batch (its client never heard): the same
  // file, as the version it made.
  for (const [sessionId, made] of chosen[0]!.completed) {
    const session = [...before.sessions, ...newSessions.values()].find((x) => x.id === sessionId)!
    const retried = await s.services.uploads.complete(s.users[session.user]!, sessionId)
    expect(
      {
        fileId: retried.file.id,
        conflict: retried.conflict,
        version: retried.file.currentVersion,
        size: retried.file.size,
        contentHash: retried.file.contentHash,
      },
      `a complete of ${sessionId} retried after the batch`,
    ).toEqual(made)
    count('batch.completeRetried')
  }

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
      if (!seen.complete.ok && seen.complete.code === 'CHUNKS_MISSING')
        count('abortVsComplete.abortWon.completeAnsweredChunksMissing')
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
  // Uploads whose complete failed stay as paused sessions, as the server recorded their chunks:
  // all of them, unless a PUT or prove found the folder gone and the upload stopped there.
  const stopped = new Map(
    uploads.flatMap(({ seen }) =>
      seen.init.ok && seen.folderGone ? [[seen.init.value.uploadId, seen]] : [],
    ),
  )
  for (const session of f.sessions.filter((x) => newSessions.has(x.id))) {
    const chunks = await s.meta.uploads.chunks(session.id)
    session.states = chunks.map((c) => c.state)
    const receipts = stopped.get(session.id)?.receipts
    expect(session.states, `${session.id}: every chunk was stored or proven`).toEqual(
      session.content.map((_, index) =>
        receipts && !receipts.some((r) => r.index === index) ? session.states[index] : 'ok',
      ),
    )
  }

  // -- the collector's own report.
  if (gcOp && gcReport) {
    // Its releases are judged with the marks, as the batch may have stored or named the chunks first.
    const expiredUploads = f.sweepExpiredUploads(false) + f.removeExpiredCompletions()
    const marks = await s.marks()
    const marked = adoptMarks(before, f, marks, stored, true, released())
    const record = await describeCopies(s, start0, after)
    const orphans = await reconcileOrphans(s, before, f, after, gcOp.orphans, names, record)
    expect(
      { ...gcReport, durationMs: 0, marked: 0, orphans: 0 },
      `gc report (marks and orphans are checked below); ${record}`,
    ).toEqual({
      dryRun: false,
      expiredUploads,
      resumed: 0,
      swept: swept.length,
      sweptBytes: swept.reduce((sum, i) => sum + POOL[i]!.length, 0),
      marked: 0,
      orphans: 0,
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
    // The orphan walk counts every copy it finds unnamed and deletes: also the copy a losing PUT
    // wrote (a dedup hit on a chunk stored anew meanwhile, or a PUT told CHUNK_BUSY) when it
    // lists it before that PUT discards it itself and the upload completes. So it may count more
    // than went (services/uploads/chunk-receipt.ts #discard; garbage-collector.ts #sweepOrphans).
    const losingCopies =
      uploads.reduce((n, { seen }) => n + seen.busy, 0) +
      uploads.flatMap(({ seen }) => seen.receipts).filter((r) => r.deduplicated && stored.includes(r.chunk))
        .length
    expect(gcReport.orphans, `gc report: orphans, at least those gone; ${record}`).toBeGreaterThanOrEqual(
      orphans,
    )
    expect(
      gcReport.orphans,
      `gc report: orphans, at most also copies losing PUTs discarded; ${record}`,
    ).toBeLessThanOrEqual(orphans + losingCopies)
    count('gc.orphansCountedBeyondThoseGone', gcReport.orphans - orphans)
    count('gc.swept', swept.length)
    count('batch.gc')
  } else {
    expect(swept, 'chunks deleted without a collector').toEqual([])
    adoptMarks(before, f, await s.marks(), stored, false, released())
    await reconcileOrphans(s, before, f, after, false, names, '')
  }
  const sweepAt = ops.findIndex((op) => op.kind === 'sweep')
  if (sweepAt >= 0) {
    // Files due when the batch began that the batch also gave a version: the sweep's visit
    // and the append raced.
    const dueBefore = before.allFiles().filter((file) => file.dueAt !== null && file.dueAt <= now)
    const appended = dueBefore.filter((file) =>
      f.allFiles().some((x) => x.id === file.id && currentOf(x).number > currentOf(file).number),
    )
    count('race.sweepVsAppend', appended.length)
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
  released: Releases,
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
    if (released.must.has(i))
      expect(mark, `mark of chunk ${i}, released by a session's end in the batch`).toBe(0)
    if (released.may.has(i) && mark === 0) {
      // Perhaps marked by the collector before an abort released it.
      if (collected && released.afterMark.has(i) && before.rows.get(i)?.markedAt === null) most += 1
      row.markedAt = 0
      continue
    }
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

/** Chunks a session's end in the batch (abort, or expiry swept by the collector) released. */
interface Releases {
  /** Those it may have marked at the epoch. */
  may: Set<number>
  /** Those it must have. */
  must: Set<number>
  /** Those it may have marked after the collector marked them (an abort's). */
  afterMark: Set<number>
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
  record: string,
): Promise<number> {
  const left = new Set<number>()
  const index = new Map(POOL_HASHES.map((hash, i) => [hash, i]))
  for await (const blob of s.blobs.list())
    if (rowCopies.get(blob.hash) !== blob.generation) left.add(index.get(blob.hash)!)
  expect(
    [...left].filter((i) => !before.orphans.has(i)),
    `orphan copies the batch left; ${record}`,
  ).toEqual([])
  const gone = [...before.orphans].filter((i) => !left.has(i))
  const mayGo = walked ? [...before.orphans].filter((i) => !names.lasting.has(i)) : []
  const mustGo = mayGo.filter((i) => !names.maybe.has(i) && !names.completing.has(i))
  expect(
    gone.filter((i) => !mayGo.includes(i)),
    `orphan copies deleted though a session named them; ${record}`,
  ).toEqual([])
  expect(
    mustGo.filter((i) => !gone.includes(i)),
    `orphan copies the walk left; ${record}`,
  ).toEqual([])
  f.orphans = left
  return gone.length
}

/** The copies and rows before and after the batch, for a failure message. */
async function describeCopies(
  s: System,
  start0: { generations: ReadonlyMap<string, string>; copies: readonly string[] },
  after: ReadonlyMap<string, string>,
): Promise<string> {
  const rows = (generations: ReadonlyMap<string, string>) =>
    POOL_HASHES.flatMap((hash, i) => (generations.has(hash) ? [`${i}.${generations.get(hash)}`] : []))
  return `copies before ${JSON.stringify(start0.copies)}, after ${JSON.stringify(await listCopies(s))}; rows before ${JSON.stringify(rows(start0.generations))}, after ${JSON.stringify(rows(after))}`
}

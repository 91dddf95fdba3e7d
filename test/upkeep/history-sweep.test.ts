import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { newId } from '../../src/domain/ids.js'
import type { Millis } from '../../src/domain/model.js'
import { type AgedVersion, type RetentionPolicy, versionsToPrune } from '../../src/domain/retention.js'
import type { MetadataStore } from '../../src/ports/metadata-store.js'
import { appendVersion } from '../../src/services/append-version.js'
import { VersionHistory } from '../../src/services/version-history.js'
import { insertUser } from '../contract/metadata-fixtures.js'
import { DATABASES, openTestMetadataStore } from '../helpers/databases.js'
import { seededRandom } from '../helpers/random.js'

/**
 * The history sweep over a real database and a virtual clock: it visits only the files whose
 * history is due, and still drops exactly what the old sweep (every file with history, at every
 * run) dropped. Versions are added the way uploads and restores add them (appendVersion, which
 * prunes at once), with empty chunk lists: the sweep never looks at bytes.
 */

const MINUTE = 60_000
const HOUR = 60 * MINUTE
const DAY = 24 * HOUR
const START = Date.UTC(2030, 0, 1)

/**
 * The old sweep, as a model: a file's versions and current version; every sweep applies the
 * policy to every file with more than one version, as VersionHistory.sweep did before due times.
 */
class HistoryModel {
  readonly files = new Map<string, { versions: AgedVersion[]; current: number }>()

  constructor(private readonly policy: RetentionPolicy) {}

  added(nodeId: string, at: Millis): void {
    const file = this.files.get(nodeId) ?? { versions: [], current: 0 }
    file.current += 1
    file.versions.push({ version: file.current, createdAt: at })
    this.files.set(nodeId, file)
    if (file.versions.length > 1) this.#prune(file, at)
  }

  /** Answers how many versions the old full walk drops at `now`, and from how many files. */
  sweep(now: Millis): { pruned: number; filesPruned: number; filesWithHistory: number } {
    let pruned = 0
    let filesPruned = 0
    let filesWithHistory = 0
    for (const file of this.files.values()) {
      if (file.versions.length <= 1) continue
      filesWithHistory += 1
      const dropped = this.#prune(file, now)
      pruned += dropped
      if (dropped > 0) filesPruned += 1
    }
    return { pruned, filesPruned, filesWithHistory }
  }

  versionsOf(nodeId: string): number[] {
    return (this.files.get(nodeId)?.versions ?? []).map((v) => v.version).sort((a, b) => b - a)
  }

  #prune(file: { versions: AgedVersion[]; current: number }, now: Millis): number {
    const doomed = new Set(versionsToPrune(file.versions, file.current, now, this.policy))
    file.versions = file.versions.filter((v) => !doomed.has(v))
    return doomed.size
  }
}

describe.each(DATABASES)('history sweep on $name', ({ name, available }) => {
  let store: MetadataStore
  let cleanup: () => Promise<void>
  let now: Millis

  beforeEach(async () => {
    if (!available) return
    ;({ store, cleanup } = await openTestMetadataStore(name))
    now = START
  })
  afterEach(async () => {
    await cleanup?.()
  })

  /** A user to own the files, and a way to give a file (new or not) a version at `now`. */
  async function owner(history: VersionHistory) {
    const user = await insertUser(store)
    return async (nodeId: string): Promise<void> => {
      await store.transaction(async (tx) => {
        await tx.users.lockTree(user.id)
        const file = await tx.nodes.findAnyState(nodeId)
        const target = file
          ? ({ kind: 'existing', file } as const)
          : ({
              kind: 'new',
              id: nodeId,
              ownerId: user.id,
              parentId: user.rootFolderId,
              name: nodeId,
            } as const)
        const content = { size: 0, contentHash: 'e'.repeat(64), chunks: [], authorId: user.id, at: now }
        await appendVersion(tx, history, target, content)
      })
    }
  }

  async function versionsInStore(nodeId: string): Promise<number[]> {
    return (await store.versions.list(nodeId)).map((v) => v.version)
  }

  it.skipIf(!available)('visits only the files that are due, each once per due time', async () => {
    const policy: RetentionPolicy = { maxVersions: 100, maxAgeMs: 30 * DAY, thin: true }
    const history = new VersionHistory(store, policy, { batchSize: 4 })
    // The first sweep records the policy; on an empty store it visits nothing.
    expect(await history.sweep(now)).toEqual({ visited: 0, pruned: 0, policyChanged: true })

    const addVersion = await owner(history)
    const quiet = Array.from({ length: 30 }, () => newId())
    const busy = Array.from({ length: 5 }, () => newId())
    for (const id of quiet) await addVersion(id)
    for (const id of busy) await addVersion(id)
    now += MINUTE
    // Quiet files: one older version, alone in its slots until it ages out in 30 days. Busy
    // ones: two older versions within one hour, which collide when the younger is an hour old.
    for (const id of quiet) await addVersion(id)
    for (const id of busy) await addVersion(id)
    now += 9 * MINUTE
    for (const id of busy) await addVersion(id)

    now += 10 * MINUTE
    expect(await history.sweep(now)).toEqual({ visited: 0, pruned: 0, policyChanged: false })
    now += 2 * HOUR
    expect(await history.sweep(now)).toEqual({ visited: 5, pruned: 5, policyChanged: false })
    for (const id of busy) expect(await versionsInStore(id)).toEqual([3, 2])
    expect(await history.sweep(now)).toEqual({ visited: 0, pruned: 0, policyChanged: false })
    now += 29 * DAY
    expect(await history.sweep(now)).toEqual({ visited: 0, pruned: 0, policyChanged: false })
    now += DAY
    // Every older version is past 30 days now; each file is visited once.
    expect(await history.sweep(now)).toEqual({ visited: 35, pruned: 35, policyChanged: false })
    for (const id of quiet) expect(await versionsInStore(id)).toEqual([2])
    for (const id of busy) expect(await versionsInStore(id)).toEqual([3])
    expect(await history.sweep(now + 365 * DAY)).toEqual({ visited: 0, pruned: 0, policyChanged: false })
  })

  it.skipIf(!available)(
    'drops exactly what the old full walk dropped, sweep after sweep, as time passes',
    { timeout: 120_000 },
    async () => {
      const seed = Number(process.env.SWEEP_SEED ?? 7)
      const random = seededRandom(seed)
      const pick = <T>(items: readonly T[]): T => items[Math.floor(random() * items.length)] as T
      // Count limit, thinning and the age limit all at work.
      const policy: RetentionPolicy = { maxVersions: 6, maxAgeMs: 20 * DAY, thin: true }
      const history = new VersionHistory(store, policy, { batchSize: 3 })
      await history.sweep(now)
      const model = new HistoryModel(policy)
      const addVersion = await owner(history)
      const files = Array.from({ length: 10 }, () => newId())
      const trashed = new Set<string>()
      // Mostly short steps, so that a due time found late shows as a sweep that pruned too little.
      const steps = [
        MINUTE,
        5 * MINUTE,
        15 * MINUTE,
        30 * MINUTE,
        50 * MINUTE,
        2 * HOUR,
        9 * HOUR,
        DAY,
        4 * DAY,
      ]
      let visits = 0
      let oldVisits = 0
      let sweepPruned = 0
      for (let step = 0; step < 160; step++) {
        now += pick(steps) + Math.floor(random() * MINUTE)
        if (random() < 0.4) {
          // A burst of saves of one file, minutes apart: versions that share hour and day slots.
          const id = pick(files)
          for (let saves = 1 + Math.floor(random() * 4); saves > 0 && !trashed.has(id); saves--) {
            await addVersion(id)
            model.added(id, now)
            now += Math.floor(random() * 10 * MINUTE)
          }
        }
        if (random() < 0.05) {
          // A trashed file keeps its history, and the sweep still thins it.
          const id = pick(files)
          if (model.files.has(id) && !trashed.has(id)) {
            await store.nodes.trashSubtree(id, now)
            trashed.add(id)
          }
        }
        if (random() < 0.8) {
          const report = await history.sweep(now)
          const expected = model.sweep(now)
          expect(report.pruned, `seed ${seed}, step ${step}`).toBe(expected.pruned)
          sweepPruned += expected.pruned
          // Every file the old walk pruned was due; no file is visited twice in a sweep.
          expect(report.visited).toBeGreaterThanOrEqual(expected.filesPruned)
          expect(report.visited).toBeLessThanOrEqual(expected.filesWithHistory)
          visits += report.visited
          oldVisits += expected.filesWithHistory
          for (const id of model.files.keys()) {
            expect(await versionsInStore(id), `seed ${seed}, step ${step}`).toEqual(model.versionsOf(id))
          }
        }
      }
      console.log(
        `[history sweep, ${name}] seed ${seed}: ${visits} file visits, where the old walk made ` +
          `${oldVisits}; ${sweepPruned} versions pruned by sweeps`,
      )
      expect(visits).toBeLessThan(oldVisits)
      expect(sweepPruned).toBeGreaterThan(20)
    },
  )

  it.skipIf(!available)('makes every file with history due when the policy changes, once', async () => {
    const keepLong: RetentionPolicy = { maxVersions: 100, maxAgeMs: 30 * DAY, thin: false }
    const keepShort: RetentionPolicy = { maxVersions: 100, maxAgeMs: 2 * DAY, thin: false }
    const before = new VersionHistory(store, keepLong)
    await before.sweep(now)
    const addVersion = await owner(before)
    const files = Array.from({ length: 6 }, () => newId())
    for (const id of files) await addVersion(id)
    now += HOUR
    for (const id of files.slice(0, 4)) await addVersion(id)
    now += 3 * DAY
    // Under the old policy nothing is due for four weeks.
    expect(await before.sweep(now)).toEqual({ visited: 0, pruned: 0, policyChanged: false })

    // A restart with VERSION_MAX_AGE_DAYS=2: the stored due times are stale.
    const after = new VersionHistory(store, keepShort)
    expect(await after.sweep(now)).toEqual({ visited: 4, pruned: 4, policyChanged: true })
    for (const id of files)
      expect(await versionsInStore(id)).toEqual(id === files[4] || id === files[5] ? [1] : [2])
    expect(await after.sweep(now)).toEqual({ visited: 0, pruned: 0, policyChanged: false })
  })
})

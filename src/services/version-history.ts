import type { Millis } from '../domain/model.js'
import {
  nextPruneAt,
  type RetentionPolicy,
  retentionFingerprint,
  versionsToPrune,
} from '../domain/retention.js'
import type { HistoryDue } from '../ports/metadata/version-repository.js'
import type { MetadataStore, Repositories } from '../ports/metadata-store.js'

/** The setting that says which policy the stored due times were computed under. */
const POLICY_SETTING = 'history.retention_policy'
const DEFAULT_BATCH_SIZE = 500

export interface HistorySweepReport {
  /** Files whose history was due, and so looked at. */
  visited: number
  /** Versions dropped. */
  pruned: number
  /** The policy differed from the one the due times were computed under: every file was due. */
  policyChanged: boolean
}

/** One file's history to prune: the version it has now is never dropped. */
export interface PruneRequest {
  nodeId: string
  currentVersion: number | null
  /** The time the policy's ages are measured from. */
  now: Millis
}

/**
 * Applies the retention policy: to one file as it gains a version, or by a sweep to the files
 * whose history is due. Each prune records when the file is next due (`nextPruneAt`), so the
 * sweep's cost follows what can be pruned, not how many files have history.
 */
export class VersionHistory {
  readonly #batchSize: number

  constructor(
    private readonly meta: MetadataStore,
    readonly policy: RetentionPolicy,
    options: { batchSize?: number } = {},
  ) {
    this.#batchSize = options.batchSize ?? DEFAULT_BATCH_SIZE
  }

  /**
   * Drops the versions of one file that the policy no longer keeps, with their chunk
   * references, and records when the file is next due, all inside the caller's transaction (so
   * a due time always describes the versions that are there). Answers how many went.
   */
  async prune(tx: Repositories, { nodeId, currentVersion, now }: PruneRequest): Promise<number> {
    const versions = await tx.versions.list(nodeId)
    if (versions.length <= 1) {
      await tx.versions.setHistoryDue(nodeId, null)
      return 0
    }
    const doomed = versionsToPrune(versions, currentVersion, now, this.policy)
    if (doomed.length > 0) {
      const dropped = await tx.versions.delete(doomed.map((version) => version.id))
      await tx.chunks.dropReferences(dropped)
    }
    const kept = versions.filter((version) => !doomed.includes(version))
    await tx.versions.setHistoryDue(nodeId, nextPruneAt(kept, currentVersion, now, this.policy))
    return doomed.length
  }

  /**
   * Re-applies the policy to the files whose history is due at `now` (versions age out of
   * their slots as time passes), oldest due first. One short transaction per file, so it runs
   * beside normal traffic; each visit moves the file's due time past `now`. `betweenBatches`
   * runs after each batch of files (upkeep renews its lease there: a sweep after the policy
   * changed visits every file with history).
   */
  async sweep(
    now: Millis,
    options: { betweenBatches?: () => Promise<void> } = {},
  ): Promise<HistorySweepReport> {
    const policyChanged = await this.#adoptPolicy(now)
    let visited = 0
    let pruned = 0
    // Keyset paging: a file made due again meanwhile (a new version written with an earlier
    // clock) waits for the next sweep instead of keeping this one going.
    let after: HistoryDue | null = null
    for (;;) {
      const due = await this.meta.versions.historyDue(now, after, this.#batchSize)
      for (const { nodeId } of due) pruned += await this.#pruneDue(nodeId, now)
      visited += due.length
      if (due.length < this.#batchSize) return { visited, pruned, policyChanged }
      await options.betweenBatches?.()
      after = due.at(-1) ?? null
    }
  }

  #pruneDue(nodeId: string, now: Millis): Promise<number> {
    return this.meta.transaction(async (tx) => {
      const file = await tx.nodes.findAnyState(nodeId)
      if (file === null) return 0
      // The owner's lock orders this against a restore or upload of the same file.
      await tx.users.lockTree(file.ownerId)
      const current = await tx.nodes.findAnyState(nodeId)
      return current ? this.prune(tx, { nodeId, currentVersion: current.currentVersion, now }) : 0
    })
  }

  /**
   * Due times computed under another policy (VERSION_* changed between restarts) may be late:
   * then every file with history is made due now, once, and this policy recorded. Answers
   * whether that happened. Read at every sweep, since another node may run another policy
   * during a rolling upgrade (then the two re-mark in turn until it is over).
   */
  async #adoptPolicy(now: Millis): Promise<boolean> {
    const fingerprint = retentionFingerprint(this.policy)
    if ((await this.meta.settings.get(POLICY_SETTING)) === fingerprint) return false
    await this.meta.transaction(async (tx) => {
      await tx.versions.markAllHistoryDue(now)
      await tx.settings.put(POLICY_SETTING, fingerprint)
    })
    return true
  }
}

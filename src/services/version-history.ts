import type { Millis } from '../domain/model.js'
import { type RetentionPolicy, versionsToPrune } from '../domain/retention.js'
import type { MetadataStore, Repositories } from '../ports/metadata-store.js'

/** Applies the retention policy: to one file as it gains a version, or to every file by sweep. */
export class VersionHistory {
  constructor(
    private readonly meta: MetadataStore,
    readonly policy: RetentionPolicy,
  ) {}

  /**
   * Drops the versions of one file that the policy no longer keeps, with their chunk
   * references, inside the caller's transaction. Answers how many went.
   */
  async prune(tx: Repositories, nodeId: string, currentVersion: number | null, now: Millis): Promise<number> {
    const versions = await tx.versions.list(nodeId)
    if (versions.length <= 1) return 0
    const doomed = versionsToPrune(versions, currentVersion, now, this.policy)
    if (doomed.length === 0) return 0
    const dropped = await tx.versions.delete(doomed.map((version) => version.id))
    await tx.chunks.dropReferences(dropped)
    return doomed.length
  }

  /**
   * Re-applies the policy to every file with history (versions age out of their slots as
   * time passes). One short transaction per file, so it runs beside normal traffic.
   */
  async sweep(now: Millis, batchSize = 500): Promise<number> {
    let pruned = 0
    let after: string | null = null
    for (;;) {
      const nodeIds = await this.meta.versions.filesWithHistory(after, batchSize)
      for (const nodeId of nodeIds) {
        pruned += await this.meta.transaction(async (tx) => {
          const file = await tx.nodes.findAnyState(nodeId)
          if (file === null) return 0
          // The owner's lock orders this against a restore or upload of the same file.
          await tx.users.lockTree(file.ownerId)
          const current = await tx.nodes.findAnyState(nodeId)
          return current ? this.prune(tx, nodeId, current.currentVersion, now) : 0
        })
      }
      if (nodeIds.length < batchSize) return pruned
      after = nodeIds.at(-1) ?? null
    }
  }
}

import type { Clock } from '../domain/clock.js'
import { restoredName } from '../domain/conflicted-name.js'
import { AppError, notFound } from '../domain/errors.js'
import { isId } from '../domain/ids.js'
import type { Millis, NodeRecord, User } from '../domain/model.js'
import type { TrashEntry } from '../ports/metadata/node-repository.js'
import type { MetadataStore, Repositories } from '../ports/metadata-store.js'
import { crashPoint } from '../support/crash-points.js'
import { pathOf } from './access.js'
import type { ChangeJournal } from './change-journal.js'
import { decodeCursor, encodeCursor, parseLimit } from './paging.js'

export interface TrashOptions {
  /** Items deleted longer ago than this are purged by `emptyExpired`; 0 keeps them forever. */
  retentionMs: Millis
}

export interface TrashItem extends TrashEntry {
  /** Where it was: the path of the folder it was deleted from, and its own name. */
  originalPath: string
  /** When `emptyExpired` will purge it, or null when the trash is never emptied. */
  purgeAt: Millis | null
}

/** How many times a restore looks for a free name before giving up (each is one query). */
const RESTORE_NAME_ATTEMPTS = 100

/**
 * The trash: what a user deleted (a file, or a folder with everything in it) until they
 * restore or purge it, or it ages out. Trashed files still count against the quota: purging
 * is what frees space (README, "Quota").
 */
export class TrashService {
  constructor(
    private readonly meta: MetadataStore,
    private readonly journal: ChangeJournal,
    private readonly clock: Clock,
    private readonly options: TrashOptions,
  ) {}

  /** One page of the trash, most recently deleted first; the cursor is opaque. */
  async list(
    user: User,
    query: { limit?: unknown; cursor?: unknown },
  ): Promise<{ items: TrashItem[]; nextCursor: string | null }> {
    const limit = parseLimit(query.limit)
    const after = decodeCursor(query.cursor, ([deletedAt, id]) =>
      typeof deletedAt === 'number' && typeof id === 'string' ? { deletedAt, id } : undefined,
    )
    const entries = await this.meta.nodes.listTrash(user.id, { after, limit: limit + 1 })
    const items = await this.#describe(entries.slice(0, limit))
    const last = items.at(-1)
    const nextCursor =
      entries.length > limit && last ? encodeCursor([last.node.deletedAt, last.node.id]) : null
    return { items, nextCursor }
  }

  #describe(entries: readonly TrashEntry[]): Promise<TrashItem[]> {
    return Promise.all(
      entries.map(async (entry) => {
        const folderPath = entry.node.parentId === null ? '/' : await pathOf(this.meta, entry.node.parentId)
        const deletedAt = entry.node.deletedAt ?? 0
        return {
          ...entry,
          originalPath: folderPath === '/' ? `/${entry.node.name}` : `${folderPath}/${entry.node.name}`,
          purgeAt: this.options.retentionMs > 0 ? deletedAt + this.options.retentionMs : null,
        }
      }),
    )
  }

  /**
   * Puts a deleted item back where it was, with everything that was deleted with it. When that
   * folder is gone too, it comes back in the root; when its name is taken there now, it comes
   * back as `name (restored).ext`. Never replaces anything.
   */
  async restore(user: User, id: string): Promise<NodeRecord> {
    return this.journal.transaction(user.id, async (tx, log) => {
      await tx.users.lockTree(user.id)
      const node = await findTrashRoot(tx, user, id)
      const originalParent = node.parentId === null ? null : await tx.nodes.findLive(user.id, node.parentId)
      const parentId = originalParent?.id ?? user.rootFolderId
      const now = this.clock()
      for (let attempt = 0; attempt < RESTORE_NAME_ATTEMPTS; attempt++) {
        const name = attempt === 0 ? node.name : restoredName(node.name, node.kind, attempt)
        if (await tx.nodes.findLiveChild(parentId, name)) continue
        try {
          await tx.nodes.restoreTrash(node.id, { parentId, name, updatedAt: now })
        } catch (error) {
          // Taken between the look and the write, by another API node: try the next name.
          if (error instanceof AppError && error.code === 'NAME_TAKEN') continue
          throw error
        }
        const restored = await tx.nodes.findLive(user.id, node.id)
        if (!restored) throw new Error(`node ${node.id} is not live after its restore`)
        log.record(restored, 'restore')
        return restored
      }
      throw new AppError('NAME_TAKEN', `no free name to restore "${node.name}" under`)
    })
  }

  /** Removes a deleted item for good, with its versions; their chunks become garbage. */
  async purge(user: User, id: string): Promise<void> {
    await this.meta.transaction(async (tx) => {
      await tx.users.lockTree(user.id)
      await purgeTree(tx, await findTrashRoot(tx, user, id))
    })
    crashPoint('trash.purge.after-commit')
  }

  /** Purges what has been in the trash longer than the retention; answers how many items. */
  async emptyExpired(batchSize = 100): Promise<number> {
    if (this.options.retentionMs <= 0) return 0
    const cutoff = this.clock() - this.options.retentionMs
    let purged = 0
    for (;;) {
      const expired = await this.meta.nodes.trashDeletedBefore(cutoff, batchSize)
      for (const root of expired) {
        const done = await this.meta.transaction(async (tx) => {
          await tx.users.lockTree(root.ownerId)
          // Restored or purged by its owner since the list was read: nothing to do.
          const still = await tx.nodes.findTrashRoot(root.ownerId, root.id)
          if (!still || (still.deletedAt ?? Number.POSITIVE_INFINITY) > cutoff) return false
          await purgeTree(tx, still)
          return true
        })
        if (done) purged += 1
      }
      if (expired.length < batchSize) return purged
    }
  }
}

async function findTrashRoot(tx: Repositories, user: User, id: string): Promise<NodeRecord> {
  const node = isId(id) ? await tx.nodes.findTrashRoot(user.id, id) : null
  if (!node) throw notFound('no such item in the trash')
  return node
}

/**
 * Deletes a trashed node and everything below it (items deleted earlier from inside it too,
 * since they cannot outlive their folder), their versions and their chunk references, and
 * gives the owner back the quota of their files. In the caller's transaction.
 */
async function purgeTree(tx: Repositories, root: NodeRecord): Promise<void> {
  const nodes = await tx.nodes.subtree(root.id)
  const files = nodes.filter((node) => node.kind === 'file')
  const versionIds = await tx.versions.idsOf(files.map((file) => file.id))
  await tx.chunks.dropReferences(await tx.versions.delete(versionIds))
  await tx.nodes.deleteMany(nodes.map((node) => node.id))
  const freed = files.reduce((sum, file) => sum + file.size, 0)
  if (freed > 0) await tx.users.addUsedBytes(root.ownerId, -freed)
}

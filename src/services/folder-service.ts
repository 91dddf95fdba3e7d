import type { Clock } from '../domain/clock.js'
import { AppError, invalid } from '../domain/errors.js'
import type { NodeRecord, User } from '../domain/model.js'
import { normalizeName } from '../domain/names.js'
import { newFolder } from '../domain/nodes.js'
import type { MetadataStore, Repositories } from '../ports/metadata-store.js'
import {
  assertMayRestructure,
  assertSameOwner,
  type Located,
  locateFolderWithPath,
  locateLocked,
  locateTarget,
  targetFolderId,
} from './access.js'
import type { ChangeJournal } from './change-journal.js'

export interface FolderWithPath {
  node: NodeRecord
  /** As the caller sees it: from their root, or from the folder shared with them. */
  path: string
  /** Where the caller's view begins when the folder is shared with them (else null). */
  shareRootId: string | null
}

/**
 * A folder to make. `name` is checked whole by `normalizeName` (INVALID_NAME for any bad name,
 * absent or not a string included), so it comes as it was sent.
 */
export interface NewFolder {
  name?: unknown
  /** A folder id (400 when malformed, 404 when not the caller's to write to); absent or null: the root. */
  parentId?: string | null
}

/** What to change: an absent field stays as it is; `parentId: null` moves to the root. */
export interface FolderChanges {
  name?: unknown
  parentId?: string | null
}

export class FolderService {
  constructor(
    private readonly meta: MetadataStore,
    private readonly journal: ChangeJournal,
    private readonly clock: Clock,
  ) {}

  /** In the caller's folders, or (as an editor) in a folder shared with them: the owner's. */
  async create(user: User, input: NewFolder): Promise<FolderWithPath> {
    const name = normalizeName(input.name)
    return this.journal.transaction(user.id, async (tx, log) => {
      // Under the tree lock: a folder created in one being deleted would stay live inside it.
      const parentId = targetFolderId(user, input.parentId, 'parentId')
      const parent = await locateLocked(tx, user, parentId, 'write', 'folder')
      const node = newFolder({
        ownerId: parent.node.ownerId,
        parentId: parent.node.id,
        name,
        at: this.clock(),
      })
      await tx.nodes.insert(node)
      log.record(node, 'create')
      return withPath(tx, user, node.id)
    })
  }

  get(user: User, id: string): Promise<FolderWithPath> {
    return withPath(this.meta, user, id)
  }

  /** Rename and/or move. A folder never moves into itself or below itself (409). */
  async update(user: User, id: string, input: FolderChanges): Promise<FolderWithPath> {
    const name = input.name === undefined ? undefined : normalizeName(input.name)
    const moving = input.parentId !== undefined
    return this.journal.transaction(user.id, async (tx, log) => {
      // Under the tree lock: two concurrent moves (A into B, B into A) could each pass the
      // cycle check alone.
      const located = await this.#restructurable(tx, user, id, 'renamed or moved')
      const { node } = located
      let parentId: string | undefined
      if (moving) {
        const parent = await locateTarget(tx, user, input.parentId, 'parentId')
        assertSameOwner(node, parent.node)
        const lineage = await tx.nodes.lineage(parent.node.id)
        if (lineage.some((ancestor) => ancestor.id === node.id)) {
          throw new AppError('MOVE_INTO_SELF', 'a folder cannot be moved into itself or its own subfolder')
        }
        parentId = parent.node.id
      }
      await tx.nodes.update(node.id, { name, parentId, updatedAt: this.clock() })
      const updated = await withPath(tx, user, id)
      if (updated.node.name !== node.name || updated.node.parentId !== node.parentId) {
        log.record(updated.node, 'move', { from: node.parentId })
      }
      return updated
    })
  }

  /** To the (owner's) trash, with everything inside. */
  async delete(user: User, id: string): Promise<void> {
    await this.journal.transaction(user.id, async (tx, log) => {
      // Under the tree lock: ordered with moves, restores and purges of the same tree (a folder
      // moved in meanwhile would otherwise stay live inside a trashed one).
      const { node } = await this.#restructurable(tx, user, id, 'deleted')
      await tx.nodes.trashSubtree(node.id, this.clock())
      log.record(node, 'delete')
    })
  }

  /** A folder the caller may rename, move or delete: not a root, not a share they only joined. */
  async #restructurable(tx: Repositories, user: User, id: string, verb: string): Promise<Located> {
    const located = await locateLocked(tx, user, id, 'write', 'folder')
    if (located.node.parentId === null) throw invalid(`the root folder cannot be ${verb}`)
    assertMayRestructure(located)
    return located
  }
}

async function withPath(repos: Repositories, user: User, id: string): Promise<FolderWithPath> {
  const { node, path, shareRoot } = await locateFolderWithPath(repos, user, id, 'read')
  return { node, path, shareRootId: shareRoot?.id ?? null }
}

import type { Clock } from '../domain/clock.js'
import { AppError, invalid } from '../domain/errors.js'
import type { NodeRecord, User } from '../domain/model.js'
import { normalizeName } from '../domain/names.js'
import { newFolder } from '../domain/nodes.js'
import type { MetadataStore } from '../ports/metadata-store.js'
import type { ChangeJournal } from './change-journal.js'
import { findOwnFolderWithPath, findOwnNode, pathOf, resolveTargetFolder } from './lookup.js'

export interface FolderWithPath {
  node: NodeRecord
  path: string
}

export class FolderService {
  constructor(
    private readonly meta: MetadataStore,
    private readonly journal: ChangeJournal,
    private readonly clock: Clock,
  ) {}

  async create(user: User, input: { name: unknown; parentId?: unknown }): Promise<FolderWithPath> {
    const name = normalizeName(input.name)
    return this.journal.transaction(user.id, async (tx, log) => {
      // Ordered with deletes: a folder created in one being deleted would stay live inside it.
      await tx.users.lockTree(user.id)
      const parent = await resolveTargetFolder(tx, user, input.parentId, 'parentId')
      const node = newFolder({ ownerId: user.id, parentId: parent.id, name, at: this.clock() })
      await tx.nodes.insert(node)
      log.record(node, 'create')
      return { node, path: await pathOf(tx, node.id) }
    })
  }

  get(user: User, id: string): Promise<FolderWithPath> {
    return findOwnFolderWithPath(this.meta, user, id)
  }

  /** Rename and/or move. A folder never moves into itself or below itself (409). */
  async update(
    user: User,
    id: string,
    input: { name?: unknown; parentId?: unknown },
  ): Promise<FolderWithPath> {
    const name = input.name === undefined ? undefined : normalizeName(input.name)
    const moving = Object.hasOwn(input, 'parentId')
    return this.journal.transaction(user.id, async (tx, log) => {
      // Two concurrent moves (A into B, B into A) could each pass the cycle check alone.
      await tx.users.lockTree(user.id)
      const node = await findOwnNode(tx, user, id, 'folder')
      if (node.parentId === null) throw invalid('the root folder cannot be renamed or moved')
      let parentId: string | undefined
      if (moving) {
        const parent = await resolveTargetFolder(tx, user, input.parentId, 'parentId')
        const lineage = await tx.nodes.lineage(parent.id)
        if (lineage.some((ancestor) => ancestor.id === node.id)) {
          throw new AppError('MOVE_INTO_SELF', 'a folder cannot be moved into itself or its own subfolder')
        }
        parentId = parent.id
      }
      await tx.nodes.update(node.id, { name, parentId, updatedAt: this.clock() })
      const updated = await findOwnFolderWithPath(tx, user, id)
      if (updated.node.name !== node.name || updated.node.parentId !== node.parentId)
        log.record(updated.node, 'move')
      return updated
    })
  }

  /** To the trash, with everything inside. */
  async delete(user: User, id: string): Promise<void> {
    await this.journal.transaction(user.id, async (tx, log) => {
      // Ordered with moves, restores and purges of the same tree (a folder moved in meanwhile
      // would otherwise stay live inside a trashed one).
      await tx.users.lockTree(user.id)
      const node = await findOwnNode(tx, user, id, 'folder')
      if (node.parentId === null) throw invalid('the root folder cannot be deleted')
      await tx.nodes.trashSubtree(node.id, this.clock())
      log.record(node, 'delete')
    })
  }
}

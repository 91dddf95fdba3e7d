import type { MemberRole, Millis, NodeKind, NodeRecord } from '../../domain/model.js'

export interface ChildrenPage {
  /** Position after which to continue: the last item of the previous page. */
  after?: { kind: NodeKind; name: string }
  limit: number
}

/** A node of a lineage, with the role a given user has as a member of it (null: none). */
export interface LineageStep {
  node: NodeRecord
  memberRole: MemberRole | null
}

export interface NodeRepository {
  /** Throws AppError NAME_TAKEN when a live sibling has the same name, or one that differs only in case. */
  insert(node: NodeRecord): Promise<void>
  /** A live (not trashed) node of this owner, or null: another owner's id is null too. */
  findLive(ownerId: string, id: string): Promise<NodeRecord | null>
  /**
   * A node by id whoever owns it, live or trashed. For background jobs only: a request
   * always goes through `findLive` with the caller's id.
   */
  findAnyState(id: string): Promise<NodeRecord | null>
  /**
   * The live child of `parentId` whose name is this one under `nameKey` (the same but for
   * case): the one a new sibling of that name would clash with.
   */
  findLiveChild(parentId: string, name: string): Promise<NodeRecord | null>
  /** Live children, folders first, then by name (binary order), after `page.after`. */
  listLiveChildren(parentId: string, page: ChildrenPage): Promise<NodeRecord[]>
  /** The node and its ancestors up to the root, nearest first (the node itself is [0]). */
  lineage(id: string): Promise<NodeRecord[]>
  /**
   * `lineage`, each node with `userId`'s membership role of it (null when none), in one query:
   * for access checks on a hot path (services/access.ts, `mayWriteFolder`).
   */
  lineageWithRoles(userId: string, id: string): Promise<LineageStep[]>
  /** Renames and/or moves; throws AppError NAME_TAKEN on a live sibling name clash. */
  update(id: string, patch: { name?: string; parentId?: string; updatedAt: Millis }): Promise<void>
  /** Sets a file's current version fields (after a new version is inserted). */
  setCurrentVersion(
    id: string,
    current: { version: number; size: number; contentHash: string; updatedAt: Millis },
  ): Promise<void>
  /**
   * Moves the node and every live node below it to the trash in one statement, recording
   * `id` as their trash root. Answers the total size of the files trashed.
   */
  trashSubtree(id: string, deletedAt: Millis): Promise<{ nodes: number; fileBytes: number }>
  /** A node of this owner that the owner deleted itself (the top of a deleted tree), or null. */
  findTrashRoot(ownerId: string, id: string): Promise<NodeRecord | null>
  /** The owner's trash roots, most recently deleted first, after `page.after`. */
  listTrash(ownerId: string, page: TrashPage): Promise<TrashEntry[]>
  /** Trash roots of any owner deleted at or before `cutoff`, oldest first. */
  trashDeletedBefore(cutoff: Millis, limit: number): Promise<NodeRecord[]>
  /**
   * Brings back every node that went to the trash with `rootId`, placing the root under
   * `parentId` as `name`. Throws AppError NAME_TAKEN when a live sibling has that name.
   */
  restoreTrash(
    rootId: string,
    placement: { parentId: string; name: string; updatedAt: Millis },
  ): Promise<void>
  /** The node and every node below it, trashed or not (what a purge removes). */
  subtree(id: string): Promise<NodeRecord[]>
  /** Deletes these nodes (whole subtrees, with their versions already gone). */
  deleteMany(ids: readonly string[]): Promise<void>
}

export interface TrashPage {
  after?: { deletedAt: Millis; id: string }
  limit: number
}

export interface TrashEntry {
  node: NodeRecord
  /** Bytes of the files that went to the trash with it (itself, for a file). */
  bytes: number
}

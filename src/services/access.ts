import { allows, type Need, type Role, stronger } from '../domain/access.js'
import { AppError, invalid, notFound } from '../domain/errors.js'
import { isId } from '../domain/ids.js'
import type { NodeKind, NodeRecord, User } from '../domain/model.js'
import type { Repositories } from '../ports/metadata-store.js'

/** A live node the caller may act on, and why. */
export interface Located {
  node: NodeRecord
  role: Role
  /**
   * The topmost folder shared with the caller that holds the node (perhaps the node itself):
   * where their view of someone else's tree begins. Null for the owner.
   */
  shareRoot: NodeRecord | null
}

export interface LocatedFolder extends Located {
  /** The folder's path as the caller sees it: from their root, or from the shared folder. */
  path: string
}

/**
 * THE permission check: every route that names a file or folder, by an id in its path, its
 * query or its body, gets the node through here and nowhere else. A node the caller can see
 * none of (another user's, trashed, unknown, or not an id at all) is 404 alike, so ids cannot
 * be probed; one the caller can see but may not do this to is 403.
 */
export async function locate(
  repos: Repositories,
  user: User,
  id: string,
  need: Need,
  kind?: NodeKind,
): Promise<Located> {
  // Made only when thrown: an error captures a stack, which every request would pay for.
  const missing = () =>
    notFound(kind === 'file' ? 'file not found' : kind === 'folder' ? 'folder not found' : 'not found')
  if (!isId(id)) throw missing()
  // The owner's case first: one indexed lookup, as before there was sharing.
  const own = await repos.nodes.findLive(user.id, id)
  if (own) {
    if (kind && own.kind !== kind) throw missing()
    return { node: own, role: 'owner', shareRoot: null }
  }
  const located = await throughShares(repos, user, await repos.nodes.lineage(id))
  if (!located || (kind && located.node.kind !== kind)) throw missing()
  return permit(located, need)
}

/**
 * The folder a request body (`parentId`, `folderId`) names as the place to put something: null
 * or absent is the caller's own root; a value that is not an id at all is a malformed body
 * (400). Whether the caller may put anything there is for `locate` to say.
 */
export function targetFolderId(user: User, folderId: unknown, field: string): string {
  if (folderId === null || folderId === undefined) return user.rootFolderId
  if (!isId(folderId)) throw invalid(`${field} must be a folder id or null`)
  return folderId
}

/** The folder a request body names (see `targetFolderId`), located: 404 when the caller cannot see it. */
export function locateTarget(
  repos: Repositories,
  user: User,
  folderId: unknown,
  field: string,
  need: Need = 'write',
): Promise<Located> {
  return locate(repos, user, targetFolderId(user, folderId, field), need, 'folder')
}

/** A folder with its path as the caller sees it, in one lineage query (plus one for members). */
export async function locateFolderWithPath(
  repos: Repositories,
  user: User,
  id: string,
  need: Need,
): Promise<LocatedFolder> {
  const lineage = isId(id) ? await repos.nodes.lineage(id) : []
  const node = lineage[0]
  if (node?.kind !== 'folder') throw notFound('folder not found')
  if (node.ownerId === user.id) {
    if (!lineage.every((ancestor) => ancestor.deletedAt === null)) throw notFound('folder not found')
    return { node, role: 'owner', shareRoot: null, path: pathFromLineage(lineage) }
  }
  const located = await throughShares(repos, user, lineage)
  if (!located) throw notFound('folder not found')
  const shareRoot = located.shareRoot as NodeRecord
  const below = lineage.slice(0, lineage.findIndex((n) => n.id === shareRoot.id) + 1)
  return {
    ...permit(located, need),
    path: `/${below
      .map((n) => n.name)
      .reverse()
      .join('/')}`,
  }
}

/**
 * Whether `userId` may put files into this folder now, by the rules of `locate` (the owner's live
 * folder, or one under a folder shared with them as an editor, none of it in the trash), in one
 * query: what an upload session checks on every request, each chunk PUT included.
 */
export async function mayWriteFolder(
  repos: Repositories,
  userId: string,
  folderId: string,
): Promise<boolean> {
  const lineage = await repos.nodes.lineageWithRoles(userId, folderId)
  const folder = lineage[0]?.node
  if (folder?.kind !== 'folder' || !lineage.every(({ node }) => node.deletedAt === null)) return false
  if (folder.ownerId === userId) return true
  const role = lineage.reduce<Role | null>(
    (best, { memberRole }) =>
      memberRole === null ? best : best === null ? memberRole : stronger(best, memberRole),
    null,
  )
  return role !== null && allows(role, 'write')
}

/**
 * Renaming, moving or deleting a shared folder itself changes what its members see: that is
 * for its owner only, though editors may do all of it inside.
 */
export function assertMayRestructure(located: Located): void {
  if (located.role !== 'owner' && located.shareRoot?.id === located.node.id) {
    throw new AppError('FORBIDDEN', 'only the owner can rename, move or delete a shared folder itself')
  }
}

/** Items move within one owner's tree only: across owners, quota and history would change hands. */
export function assertSameOwner(item: NodeRecord, target: NodeRecord): void {
  if (item.ownerId !== target.ownerId) {
    throw new AppError(
      'MOVE_ACROSS_OWNERS',
      'items move only within one owner’s files (into or out of a shared folder: download and upload instead)',
    )
  }
}

/** The folder's path from its owner's root, like `/Photos/2024`; the root is `/`. */
export async function pathOf(repos: Repositories, nodeId: string): Promise<string> {
  return pathFromLineage(await repos.nodes.lineage(nodeId))
}

/** Through a membership of a folder in the node's lineage (nearest first), or null. */
async function throughShares(
  repos: Repositories,
  user: User,
  lineage: readonly NodeRecord[],
): Promise<Located | null> {
  const node = lineage[0]
  if (!node || !lineage.every((ancestor) => ancestor.deletedAt === null)) return null
  const memberships = await repos.sharing.memberships(
    user.id,
    lineage.map((ancestor) => ancestor.id),
  )
  if (memberships.length === 0) return null
  const shared = new Set(memberships.map((membership) => membership.folderId))
  let shareRoot: NodeRecord | null = null
  for (const ancestor of lineage) if (shared.has(ancestor.id)) shareRoot = ancestor
  const role = memberships.reduce<Role>((best, membership) => stronger(best, membership.role), 'viewer')
  return { node, role, shareRoot }
}

function permit<T extends Located>(located: T, need: Need): T {
  if (!allows(located.role, need)) {
    throw new AppError(
      'FORBIDDEN',
      need === 'own' ? 'only the owner can do this' : 'this folder is shared with you to view only',
    )
  }
  return located
}

function pathFromLineage(lineage: readonly NodeRecord[]): string {
  const names = lineage
    .filter((node) => node.parentId !== null)
    .map((node) => node.name)
    .reverse()
  return `/${names.join('/')}`
}

/**
 * `locate` inside a transaction, under the owner's tree lock (so that what it answers stays true
 * until commit: no move, delete or restore of that tree runs meanwhile). The node is looked up
 * again once the lock is held.
 */
export async function locateLocked(
  tx: Repositories,
  user: User,
  id: string,
  need: Need,
  kind?: NodeKind,
): Promise<Located> {
  const before = await locate(tx, user, id, need, kind)
  await tx.users.lockTree(before.node.ownerId)
  return locate(tx, user, id, need, kind)
}

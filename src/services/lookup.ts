import { invalid, notFound } from '../domain/errors.js'
import { isId } from '../domain/ids.js'
import type { NodeKind, NodeRecord, User } from '../domain/model.js'
import type { Repositories } from '../ports/metadata-store.js'

/**
 * Finds a live node of the caller by an id taken from the URL. A malformed id cannot name
 * anything, so it is 404 like an unknown one, or another user's.
 */
export async function findOwnNode(
  repos: Repositories,
  user: User,
  id: string,
  kind: NodeKind,
): Promise<NodeRecord> {
  const node = isId(id) ? await repos.nodes.findLive(user.id, id) : null
  if (!node || node.kind !== kind) throw notFound(kind === 'file' ? 'file not found' : 'folder not found')
  return node
}

/**
 * Resolves a folder id given in a request body (`parentId`, `folderId`): null or absent is
 * the caller's root; a value that is not an id at all is a malformed body (400); an unknown
 * or foreign id is 404.
 */
export async function resolveTargetFolder(
  repos: Repositories,
  user: User,
  folderId: unknown,
  field: string,
): Promise<NodeRecord> {
  if (folderId === null || folderId === undefined)
    return findOwnNode(repos, user, user.rootFolderId, 'folder')
  if (!isId(folderId)) throw invalid(`${field} must be a folder id or null`)
  return findOwnNode(repos, user, folderId, 'folder')
}

/**
 * A live folder of the caller with its path, in one query (the lineage holds both). A
 * malformed id is 404 like an unknown one.
 */
export async function findOwnFolderWithPath(
  repos: Repositories,
  user: User,
  id: string,
): Promise<{ node: NodeRecord; path: string }> {
  const lineage = isId(id) ? await repos.nodes.lineage(id) : []
  const node = lineage[0]
  const live = lineage.every((ancestor) => ancestor.deletedAt === null)
  if (!node || node.ownerId !== user.id || node.kind !== 'folder' || !live) throw notFound('folder not found')
  return { node, path: pathFromLineage(lineage) }
}

function pathFromLineage(lineage: readonly NodeRecord[]): string {
  const names = lineage
    .filter((node) => node.parentId !== null)
    .map((node) => node.name)
    .reverse()
  return `/${names.join('/')}`
}

/** The folder's path from the user's root, like `/Photos/2024`; the root is `/`. */
export async function pathOf(repos: Repositories, nodeId: string): Promise<string> {
  return pathFromLineage(await repos.nodes.lineage(nodeId))
}

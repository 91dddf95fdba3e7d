import type { NodeRecord, User, VersionRecord } from '../domain/model.js'
import type { TrashItem } from '../services/trash-service.js'

/** The JSON shapes of API.md. Timestamps are ISO 8601 strings; a user's root is `null`. */
const iso = (millis: number): string => new Date(millis).toISOString()

const parentOf = (node: NodeRecord, user: User): string | null =>
  node.parentId === user.rootFolderId ? null : node.parentId

export const presentUser = (user: User) => ({
  id: user.id,
  email: user.email,
  quotaBytes: user.quotaBytes,
  usedBytes: user.usedBytes,
  createdAt: iso(user.createdAt),
})

/**
 * `shareRootId`: the folder shared with the caller that their view of it begins at; it shows
 * as a top-level folder (`parentId: null`), since its real parent is not theirs to see.
 */
export const presentFolder = (
  node: NodeRecord,
  path: string,
  user: User,
  shareRootId: string | null = null,
) => ({
  id: node.id,
  name: node.name,
  parentId: node.parentId === null || node.id === shareRootId ? null : parentOf(node, user),
  path,
  createdAt: iso(node.createdAt),
  updatedAt: iso(node.updatedAt),
})

export const presentFile = (node: NodeRecord, user: User) => ({
  id: node.id,
  name: node.name,
  folderId: parentOf(node, user),
  size: node.size,
  version: node.currentVersion,
  contentHash: node.contentHash,
  createdAt: iso(node.createdAt),
  updatedAt: iso(node.updatedAt),
})

export const presentListItem = (node: NodeRecord) => ({
  type: node.kind,
  id: node.id,
  name: node.name,
  size: node.kind === 'file' ? node.size : null,
  version: node.currentVersion,
  updatedAt: iso(node.updatedAt),
})

export const presentVersion = (version: VersionRecord) => ({
  version: version.version,
  size: version.size,
  contentHash: version.contentHash,
  createdAt: iso(version.createdAt),
})

export const presentTrashItem = (item: TrashItem, user: User) => ({
  type: item.node.kind,
  id: item.node.id,
  name: item.node.name,
  size: item.bytes,
  /** The folder it was deleted from (null: the root), and the path it had. */
  folderId: parentOf(item.node, user),
  originalPath: item.originalPath,
  deletedAt: iso(item.node.deletedAt ?? 0),
  purgeAt: item.purgeAt === null ? null : iso(item.purgeAt),
})

export const presentIso = iso

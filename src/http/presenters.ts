import type { NodeRecord, User } from '../domain/model.js'

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

export const presentFolder = (node: NodeRecord, path: string, user: User) => ({
  id: node.id,
  name: node.name,
  parentId: node.parentId === null ? null : parentOf(node, user),
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

export const presentIso = iso

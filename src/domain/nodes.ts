import { newId } from './ids.js'
import type { Millis, NodeRecord } from './model.js'

interface NewNode {
  id?: string
  ownerId: string
  /** Null only for a user's root folder. */
  parentId: string | null
  name: string
  at: Millis
}

/** A new, live, empty folder. */
export function newFolder({ id = newId(), ownerId, parentId, name, at }: NewNode): NodeRecord {
  return {
    id,
    ownerId,
    parentId,
    kind: 'folder',
    name,
    size: 0,
    currentVersion: null,
    contentHash: null,
    createdAt: at,
    updatedAt: at,
    deletedAt: null,
    trashRootId: null,
  }
}

/** A new, live file whose first version is `current`. */
export function newFile(
  node: NewNode & { current: { version: number; size: number; contentHash: string } },
): NodeRecord {
  return {
    ...newFolder(node),
    kind: 'file',
    size: node.current.size,
    currentVersion: node.current.version,
    contentHash: node.current.contentHash,
  }
}

import type { Insertable, Selectable } from 'kysely'
import type { NodeRecord } from '../../domain/model.js'
import { nameKey } from '../../domain/names.js'
import type { NodesTable } from './schema.js'

/** A node as its row stores it: `name_key` is derived here, so no caller can set it apart from the name. */
export function toRow(node: NodeRecord): Insertable<NodesTable> {
  return {
    id: node.id,
    owner_id: node.ownerId,
    parent_id: node.parentId,
    kind: node.kind,
    name: node.name,
    name_key: nameKey(node.name),
    size: node.size,
    current_version: node.currentVersion,
    content_hash: node.contentHash,
    created_at: node.createdAt,
    updated_at: node.updatedAt,
    deleted_at: node.deletedAt,
    trash_root_id: node.trashRootId,
  }
}

export function toNode(row: Selectable<NodesTable>): NodeRecord {
  return {
    id: row.id,
    ownerId: row.owner_id,
    parentId: row.parent_id,
    kind: row.kind,
    name: row.name,
    size: row.size,
    currentVersion: row.current_version,
    contentHash: row.content_hash,
    createdAt: row.created_at,
    updatedAt: row.updated_at,
    deletedAt: row.deleted_at,
    trashRootId: row.trash_root_id,
    listingVersion: row.listing_version,
  }
}

import { AppError } from '../domain/errors.js'
import { countByHash } from '../domain/hashes.js'
import { newId } from '../domain/ids.js'
import type { ChunkRef, Millis, NodeRecord } from '../domain/model.js'
import { newFile } from '../domain/nodes.js'
import type { Repositories } from '../ports/metadata-store.js'
import type { VersionHistory } from './version-history.js'

export interface NewContent {
  size: number
  contentHash: string
  chunks: readonly ChunkRef[]
  authorId: string
  at: Millis
}

/** Where the content goes: a new version of `file`, or a new file (version 1). */
export type VersionTarget =
  | { kind: 'existing'; file: NodeRecord }
  | { kind: 'new'; id: string; ownerId: string; parentId: string; name: string }

/** The number of the version `appendVersion` makes for this target. */
export const versionMadeBy = (target: VersionTarget): number =>
  (target.kind === 'existing' ? (target.file.currentVersion ?? 0) : 0) + 1

/**
 * Makes `content` the current version of a file, inside the caller's transaction (which holds
 * the owner's tree lock): the quota, the file or its new version, the chunk references, and
 * the pruning of history that the retention policy no longer keeps. Used by upload and by
 * restore, so that a version is added one way only. Answers the file as it now is.
 */
export async function appendVersion(
  tx: Repositories,
  history: VersionHistory,
  target: VersionTarget,
  content: NewContent,
): Promise<NodeRecord> {
  const previous = target.kind === 'existing' ? target.file : null
  const ownerId = target.kind === 'existing' ? target.file.ownerId : target.ownerId
  const nodeId = target.kind === 'existing' ? target.file.id : target.id
  const grows = content.size - (previous?.size ?? 0)
  if (!(await tx.users.addUsedBytes(ownerId, grows, { withinQuota: grows > 0 }))) {
    throw new AppError('QUOTA_EXCEEDED', 'the file does not fit in the remaining quota')
  }
  const version = versionMadeBy(target)
  const current = { version, size: content.size, contentHash: content.contentHash }
  if (target.kind === 'new') {
    const { id, parentId, name } = target
    await tx.nodes.insert(newFile({ id, ownerId, parentId, name, at: content.at, current }))
  }
  await tx.versions.insert(
    { id: newId(), nodeId, ...current, authorId: content.authorId, createdAt: content.at },
    content.chunks,
  )
  if (previous) await tx.nodes.setCurrentVersion(nodeId, { ...current, updatedAt: content.at })
  // Throws CHUNKS_MISSING (and the transaction rolls back) if the collector claimed a chunk.
  await tx.chunks.addReferences(countByHash(content.chunks))
  if (previous) await history.prune(tx, nodeId, version, content.at)
  const file = await tx.nodes.findLive(ownerId, nodeId)
  if (!file) throw new Error(`file ${nodeId} vanished inside its own transaction`)
  return file
}

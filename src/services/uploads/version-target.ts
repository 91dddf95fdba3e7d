import type { Clock } from '../../domain/clock.js'
import { conflictedCopyName } from '../../domain/conflicted-name.js'
import { AppError } from '../../domain/errors.js'
import { newId } from '../../domain/ids.js'
import type { Millis, User } from '../../domain/model.js'
import type { Repositories } from '../../ports/metadata-store.js'
import { locateLocked } from '../access.js'
import type { VersionTarget } from '../append-version.js'

/** Where an upload's content goes, as a session or a one-request upload names it. */
export interface UploadTarget {
  folderId: string
  filename: string
  /** The version the client's copy was based on, if it said. */
  baseVersion: number | null
}

/**
 * Where an upload's content goes: a new version of the file of its name, or a new file; a
 * conflicted copy beside it when the client's base version is out of date. Takes the folder
 * owner's tree lock (two completes of one name cannot both make version n+1) and the chunk guard.
 */
export async function versionTarget(
  tx: Repositories,
  user: User,
  upload: UploadTarget,
  clock: Clock,
): Promise<{ target: VersionTarget; conflict: boolean; now: Millis }> {
  const { node: folder } = await locateLocked(tx, user, upload.folderId, 'write', 'folder').catch(
    (error: unknown) => {
      const gone = error instanceof AppError && error.code === 'NOT_FOUND'
      throw gone
        ? new AppError('NOT_FOUND', 'the target folder was deleted (or unshared) during the upload')
        : error
    },
  )
  await tx.chunks.guard('use')
  // The time of the version, read once the locks are held.
  const now = clock()
  const existing = await tx.nodes.findLiveChild(folder.id, upload.filename)
  if (existing?.kind === 'folder')
    throw new AppError('NAME_TAKEN', `a folder named "${upload.filename}" exists here`)
  const conflict =
    existing !== null && upload.baseVersion !== null && existing.currentVersion !== upload.baseVersion
  if (existing && !conflict) return { target: { kind: 'existing', file: existing }, conflict, now }
  const name = conflict
    ? await freeConflictedName(tx, folder.id, upload.filename, new Date(now))
    : upload.filename
  const target: VersionTarget = {
    kind: 'new',
    id: newId(),
    ownerId: folder.ownerId,
    parentId: folder.id,
    name,
  }
  return { target, conflict, now }
}

async function freeConflictedName(
  tx: Repositories,
  folderId: string,
  filename: string,
  at: Date,
): Promise<string> {
  for (let attempt = 1; ; attempt++) {
    const candidate = conflictedCopyName(filename, at, attempt)
    if (!(await tx.nodes.findLiveChild(folderId, candidate))) return candidate
  }
}

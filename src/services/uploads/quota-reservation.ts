import { AppError } from '../../domain/errors.js'
import type { NodeRecord, QuotaReservation, UploadRecord } from '../../domain/model.js'
import type { Repositories } from '../../ports/metadata-store.js'

/**
 * Checks, in the transaction that records the session, that its uploader may open one more
 * and that its reservation fits in the owner's quota beside what the owner uses and what the
 * owner's other open sessions hold. The accounts are locked first, so of two inits that would
 * not fit together the second counts the first's session. The reservation is released by the
 * session's end: complete (in the transaction that charges the file's real growth), abort, or
 * expiry (an expired session counts for nothing, swept or not).
 *
 * A session reserves every byte it declares, so that what all open sessions may bring in stays
 * within the quota; but one that replaces a file is credited that file's current size (it
 * replaces bytes the owner is charged for already), provided no other open session of the
 * owner counts on that file: a file covers one session at a time, or a user with one 8 MiB file
 * could open any number of 8 MiB sessions replacing it for nothing. Settled under the lock, so
 * of two inits replacing one file only one gets the credit (written into `upload.reservation`).
 */
export async function reserveQuota(
  tx: Repositories,
  upload: UploadRecord,
  replaced: NodeRecord | null,
  maxOpenSessions: number,
): Promise<void> {
  const reservation = upload.reservation as QuotaReservation
  await tx.uploads.lockAccounts([upload.userId, reservation.ownerId])
  await assertMayOpenAnother(tx, upload, maxOpenSessions)
  const owner = await tx.users.findById(reservation.ownerId)
  if (!owner) throw new AppError('UNAUTHORIZED', 'the account no longer exists')
  let credit = 0
  let creditTaken = false
  if (replaced) {
    creditTaken = await tx.uploads.creditTaken(owner.id, replaced.id, upload.createdAt)
    // Its size as of now, under the lock: a version completed since the lookup counts.
    const file = creditTaken ? null : await tx.nodes.findAnyState(replaced.id)
    if (file?.kind === 'file' && file.ownerId === owner.id) {
      reservation.creditFileId = file.id
      credit = Math.min(reservation.bytes, file.size)
    }
  }
  const holds = reservation.bytes - credit
  if (holds === 0) return
  const reserved = await tx.uploads.reservedBytes(owner.id, upload.createdAt)
  if (owner.usedBytes + reserved + holds > owner.quotaBytes) {
    const held = reserved > 0 ? ` (${reserved} bytes of it are held by open upload sessions)` : ''
    const replacing = creditTaken
      ? '; another open upload session replacing this file counts on its current size already'
      : ''
    throw new AppError(
      'QUOTA_EXCEEDED',
      `${upload.size} bytes do not fit in the remaining quota${held}${replacing}`,
    )
  }
}

/** TOO_MANY_UPLOADS (429) when the uploader has `maxOpenSessions` open already. */
async function assertMayOpenAnother(
  tx: Repositories,
  upload: UploadRecord,
  maxOpenSessions: number,
): Promise<void> {
  const open = await tx.uploads.openSessions(upload.userId, upload.createdAt)
  if (open.count < maxOpenSessions) return
  const freedAt = open.firstExpiry ?? upload.createdAt
  throw new AppError(
    'TOO_MANY_UPLOADS',
    `${open.count} upload sessions are open already, the most one user may have: ` +
      'complete or abort one (DELETE /upload/:id) before starting another',
    { retryAfterSeconds: Math.max(1, Math.ceil((freedAt - upload.createdAt) / 1000)) },
  )
}

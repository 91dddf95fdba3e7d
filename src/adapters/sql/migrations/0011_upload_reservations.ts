import { type Kysely, type Migration, sql } from 'kysely'

/**
 * What an open upload session holds (issue: hostile clients).
 *
 * - `uploads.owner_id`, `uploads.reserved_bytes`: the account whose quota the session's file
 *   will be charged to (the folder's owner, who is not the uploader in a shared folder), and the
 *   bytes the session holds of that quota from init until it is completed, aborted or expires.
 *   An init counts the reservations of the owner's open sessions beside `users.used_bytes`.
 *   Sessions opened before this migration reserve nothing (owner unknown: null); they are gone
 *   within a day.
 * - The partial index serves that sum, and the count of a user's open sessions the per-user cap
 *   needs, over open sessions only.
 * - `upload_chunks.proof_digest`: SHA-256 of the HMAC a proof for this chunk must equal, kept once
 *   the stored bytes were read for a proof, so that no chunk of a session is read and hashed for
 *   proofs twice. A digest of it, not the HMAC itself: whoever reads the database learns nothing
 *   that would pass for a proof.
 */
export const uploadReservationsMigration: Migration = {
  async up(db: Kysely<unknown>) {
    await db.schema.alterTable('uploads').addColumn('owner_id', 'text').execute()
    await db.schema
      .alterTable('uploads')
      .addColumn('reserved_bytes', 'bigint', (c) => c.notNull().defaultTo(0))
      .execute()
    await db.schema
      .createIndex('uploads_open_owner_idx')
      .on('uploads')
      .columns(['owner_id', 'expires_at'])
      .where(sql.ref('completed_at'), 'is', null)
      .execute()
    await db.schema
      .createIndex('uploads_open_user_idx')
      .on('uploads')
      .columns(['user_id', 'expires_at'])
      .where(sql.ref('completed_at'), 'is', null)
      .execute()
    await db.schema.alterTable('upload_chunks').addColumn('proof_digest', 'text').execute()
  },
  async down(db: Kysely<unknown>) {
    await db.schema.alterTable('upload_chunks').dropColumn('proof_digest').execute()
    await db.schema.dropIndex('uploads_open_user_idx').execute()
    await db.schema.dropIndex('uploads_open_owner_idx').execute()
    await db.schema.alterTable('uploads').dropColumn('reserved_bytes').execute()
    await db.schema.alterTable('uploads').dropColumn('owner_id').execute()
  },
}

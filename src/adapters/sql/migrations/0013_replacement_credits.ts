import type { Kysely, Migration } from 'kysely'

/**
 * What open upload sessions may bring in stays within the quota (issue: hostile clients).
 *
 * - `uploads.credit_file_id`: the file whose current size covers part of the session's
 *   reservation, because the session replaces it. A file covers at most one open session; every
 *   other session replacing it reserves its whole size. From this migration on,
 *   `uploads.reserved_bytes` is the session's declared size, and what it holds of the quota is
 *   that less the current size of its credit file while the file exists (a purged file covers
 *   nothing). Sessions opened before hold what they held (their growth, no credit); they are
 *   gone within a day.
 */
export const replacementCreditsMigration: Migration = {
  async up(db: Kysely<unknown>) {
    await db.schema.alterTable('uploads').addColumn('credit_file_id', 'text').execute()
  },
  async down(db: Kysely<unknown>) {
    await db.schema.alterTable('uploads').dropColumn('credit_file_id').execute()
  },
}

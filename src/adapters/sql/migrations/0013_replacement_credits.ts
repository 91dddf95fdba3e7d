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
 * - `chunks.never_referenced`: 1 while no version has named the chunk since its copy was stored.
 *   Only such a chunk may skip the collector's grace period when the session that brought it in
 *   ends (no download can be reading it). Rows stored before this migration are 0: nobody knows.
 */
export const replacementCreditsMigration: Migration = {
  async up(db: Kysely<unknown>) {
    await db.schema.alterTable('uploads').addColumn('credit_file_id', 'text').execute()
    await db.schema
      .alterTable('chunks')
      .addColumn('never_referenced', 'integer', (c) => c.notNull().defaultTo(0))
      .execute()
  },
  async down(db: Kysely<unknown>) {
    await db.schema.alterTable('chunks').dropColumn('never_referenced').execute()
    await db.schema.alterTable('uploads').dropColumn('credit_file_id').execute()
  },
}

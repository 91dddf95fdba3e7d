import type { Kysely, Migration } from 'kysely'

/**
 * A completed upload session is kept, with what it made (the file, the version and its content
 * hash), until it expires, instead of being deleted at `complete`: a retried `complete` (the
 * client never heard the first answer) then answers with that same file and version rather than
 * making a second version of it, and exactly one of two
 * concurrent completes can claim the session (a conditional UPDATE of `completed_at`).
 * Its chunk list goes at completion: the version's references protect those chunks now.
 */
export const uploadCompletionMigration: Migration = {
  async up(db: Kysely<unknown>) {
    await db.schema.alterTable('uploads').addColumn('completed_at', 'bigint').execute()
    await db.schema.alterTable('uploads').addColumn('file_id', 'text').execute()
    await db.schema.alterTable('uploads').addColumn('file_version', 'integer').execute()
    await db.schema.alterTable('uploads').addColumn('content_hash', 'text').execute()
    await db.schema
      .alterTable('uploads')
      .addColumn('conflict', 'integer', (c) => c.notNull().defaultTo(0))
      .execute()
  },
  async down(db: Kysely<unknown>) {
    for (const column of ['conflict', 'content_hash', 'file_version', 'file_id', 'completed_at']) {
      await db.schema.alterTable('uploads').dropColumn(column).execute()
    }
  },
}

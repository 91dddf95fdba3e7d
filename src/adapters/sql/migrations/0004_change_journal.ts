import { type Kysely, type Migration, sql } from 'kysely'

/**
 * The change journal (API.md, Sync): every change a user can see, appended in the same
 * transaction as the change itself.
 *
 * - `journal_heads`: per user, `head` is the last sequence number handed out and `floor` the
 *   last one compacted away (every entry in (floor, head] is present). Appending bumps `head`
 *   with an upsert, which row-locks it until commit on PostgreSQL: a user's appends commit in
 *   sequence order, so a reader paging by `seq > cursor` can never skip an entry that commits
 *   later. A table of its own, not a column of `users`, so that fanning a change out to other
 *   users' journals never waits on their tree locks (which are `users` row locks).
 * - `changes`: the entries, keyed by (user, seq). `at` serves compaction by age.
 */
export const changeJournalMigration: Migration = {
  async up(db: Kysely<unknown>) {
    await db.schema
      .createTable('journal_heads')
      .addColumn('user_id', 'text', (c) => c.primaryKey().references('users.id').onDelete('cascade'))
      .addColumn('head', 'bigint', (c) => c.notNull().defaultTo(0))
      .addColumn('floor', 'bigint', (c) => c.notNull().defaultTo(0))
      .execute()
    await db.schema
      .createTable('changes')
      .addColumn('user_id', 'text', (c) => c.notNull())
      .addColumn('seq', 'bigint', (c) => c.notNull())
      .addColumn('action', 'text', (c) => c.notNull())
      .addColumn('kind', 'text', (c) => c.notNull())
      .addColumn('node_id', 'text', (c) => c.notNull())
      .addColumn('name', 'text', (c) => c.notNull())
      .addColumn('parent_id', 'text')
      .addColumn('version', 'integer')
      .addColumn('size', 'bigint', (c) => c.notNull().defaultTo(0))
      .addColumn('content_hash', 'text')
      .addColumn('actor_id', 'text', (c) => c.notNull())
      .addColumn('at', 'bigint', (c) => c.notNull())
      .addPrimaryKeyConstraint('changes_pkey', ['user_id', 'seq'])
      .addCheckConstraint(
        'changes_action_check',
        sql`action in ('create', 'update', 'delete', 'move', 'restore')`,
      )
      .addCheckConstraint('changes_kind_check', sql`kind in ('file', 'folder')`)
      .execute()
    await db.schema.createIndex('changes_at_idx').on('changes').column('at').execute()
  },
  async down(db: Kysely<unknown>) {
    await db.schema.dropTable('changes').execute()
    await db.schema.dropTable('journal_heads').execute()
  },
}

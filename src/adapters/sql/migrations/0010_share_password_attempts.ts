import type { Kysely, Migration } from 'kysely'

/**
 * Password attempts on a link, per client address (issue: hostile clients).
 *
 * `share_links.failed_attempts` now counts attempts reserved in the link's current window
 * (since `attempts_since`): a slot is taken before a password is checked and handed back when
 * it was right. `share_link_attempts` holds each address's share of that window's slots, so
 * that one address cannot use up the whole link's budget. A row belongs to the link window
 * that started at `window_start`; rows of earlier windows count for nothing and are removed
 * when the next window starts.
 */
export const sharePasswordAttemptsMigration: Migration = {
  async up(db: Kysely<unknown>) {
    await db.schema
      .createTable('share_link_attempts')
      .addColumn('link_id', 'text', (c) => c.notNull().references('share_links.id').onDelete('cascade'))
      .addColumn('address', 'text', (c) => c.notNull())
      .addColumn('window_start', 'bigint', (c) => c.notNull())
      .addColumn('attempts', 'integer', (c) => c.notNull())
      .addPrimaryKeyConstraint('share_link_attempts_pkey', ['link_id', 'address'])
      .execute()
  },
  async down(db: Kysely<unknown>) {
    await db.schema.dropTable('share_link_attempts').execute()
  },
}

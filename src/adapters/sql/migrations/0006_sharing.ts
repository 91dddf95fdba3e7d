import { type Kysely, type Migration, sql } from 'kysely'

/**
 * Sharing (API.md, Sharing):
 * - `folder_members`: a user's role (viewer, editor) in another user's folder and everything
 *   below it. Gone with the folder when it is purged, and with either user.
 * - `share_links`: public links to a file or folder. `token_hash` (SHA-256 of the token) is
 *   what a request is looked up by; `token` is kept so that the owner can list their links.
 *   `failed_attempts` since `attempts_since` limit password guessing per link, across nodes.
 */
export const sharingMigration: Migration = {
  async up(db: Kysely<unknown>) {
    await db.schema
      .createTable('folder_members')
      .addColumn('folder_id', 'text', (c) => c.notNull().references('nodes.id').onDelete('cascade'))
      .addColumn('user_id', 'text', (c) => c.notNull().references('users.id').onDelete('cascade'))
      .addColumn('role', 'text', (c) => c.notNull())
      .addColumn('added_by', 'text', (c) => c.notNull())
      .addColumn('created_at', 'bigint', (c) => c.notNull())
      .addPrimaryKeyConstraint('folder_members_pkey', ['folder_id', 'user_id'])
      .addCheckConstraint('folder_members_role_check', sql`role in ('viewer', 'editor')`)
      .execute()
    await db.schema.createIndex('folder_members_user_idx').on('folder_members').column('user_id').execute()

    await db.schema
      .createTable('share_links')
      .addColumn('id', 'text', (c) => c.primaryKey())
      .addColumn('token', 'text', (c) => c.notNull())
      .addColumn('token_hash', 'text', (c) => c.notNull().unique())
      .addColumn('owner_id', 'text', (c) => c.notNull().references('users.id').onDelete('cascade'))
      .addColumn('node_id', 'text', (c) => c.notNull().references('nodes.id').onDelete('cascade'))
      .addColumn('password_hash', 'text')
      .addColumn('expires_at', 'bigint')
      .addColumn('created_at', 'bigint', (c) => c.notNull())
      .addColumn('revoked_at', 'bigint')
      .addColumn('downloads', 'bigint', (c) => c.notNull().defaultTo(0))
      .addColumn('failed_attempts', 'integer', (c) => c.notNull().defaultTo(0))
      .addColumn('attempts_since', 'bigint', (c) => c.notNull().defaultTo(0))
      .execute()
    await db.schema
      .createIndex('share_links_owner_idx')
      .on('share_links')
      .columns(['owner_id', 'created_at'])
      .execute()
    await db.schema.createIndex('share_links_node_idx').on('share_links').column('node_id').execute()
  },
  async down(db: Kysely<unknown>) {
    await db.schema.dropTable('share_links').execute()
    await db.schema.dropTable('folder_members').execute()
  },
}

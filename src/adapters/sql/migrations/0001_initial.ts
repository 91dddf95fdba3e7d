import { type ColumnDefinitionBuilder, type Kysely, type Migration, sql } from 'kysely'
import type { SqlDialect } from '../dialect.js'

/**
 * The first schema. Written once with the schema builder for SQLite and PostgreSQL; the only
 * branch is the collation of names (see `binaryOrder`).
 *
 * Foreign keys are the ones the model needs to stay whole (sessions, parent folders, versions
 * and their chunk lists). There is none from users.root_folder_id (the user row is inserted
 * before its root folder, which it owns) nor from uploads.folder_id (a pending upload must not
 * block purging its folder; `complete` re-checks the folder).
 */
export function initialMigration(dialect: SqlDialect): Migration {
  /**
   * PostgreSQL sorts and compares text by the database's locale unless told otherwise;
   * `COLLATE "C"` makes names order by bytes, as SQLite's default BINARY collation does, so
   * listings and keyset pagination agree on both.
   */
  const binaryOrder = (column: ColumnDefinitionBuilder): ColumnDefinitionBuilder =>
    dialect === 'postgres' ? column.modifyFront(sql`collate "C"`) : column

  return {
    async up(db: Kysely<unknown>): Promise<void> {
      await db.schema
        .createTable('users')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('email', 'text', (c) => c.notNull())
        .addColumn('password_hash', 'text', (c) => c.notNull())
        .addColumn('quota_bytes', 'bigint', (c) => c.notNull())
        .addColumn('used_bytes', 'bigint', (c) => c.notNull().defaultTo(0))
        .addColumn('root_folder_id', 'text', (c) => c.notNull())
        .addColumn('created_at', 'bigint', (c) => c.notNull())
        .addUniqueConstraint('users_email_key', ['email'])
        .execute()

      await db.schema
        .createTable('auth_sessions')
        .addColumn('token_hash', 'text', (c) => c.primaryKey())
        .addColumn('user_id', 'text', (c) => c.notNull().references('users.id').onDelete('cascade'))
        .addColumn('created_at', 'bigint', (c) => c.notNull())
        .addColumn('expires_at', 'bigint', (c) => c.notNull())
        .execute()
      await db.schema
        .createIndex('auth_sessions_expires_at_idx')
        .on('auth_sessions')
        .column('expires_at')
        .execute()
      await db.schema.createIndex('auth_sessions_user_id_idx').on('auth_sessions').column('user_id').execute()

      await db.schema
        .createTable('nodes')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('owner_id', 'text', (c) => c.notNull())
        .addColumn('parent_id', 'text', (c) => c.references('nodes.id'))
        .addColumn('kind', 'text', (c) => c.notNull())
        .addColumn('name', 'text', (c) => binaryOrder(c).notNull())
        .addColumn('size', 'bigint', (c) => c.notNull().defaultTo(0))
        .addColumn('current_version', 'integer')
        .addColumn('content_hash', 'text')
        .addColumn('created_at', 'bigint', (c) => c.notNull())
        .addColumn('updated_at', 'bigint', (c) => c.notNull())
        .addColumn('deleted_at', 'bigint')
        .addColumn('trash_root_id', 'text')
        .addCheckConstraint('nodes_kind_check', sql`kind in ('file', 'folder')`)
        .execute()
      // Sibling names are unique among live nodes, files and folders alike; a trashed node
      // keeps its name without blocking it. Partial indexes work in both databases.
      await db.schema
        .createIndex('nodes_live_name_key')
        .on('nodes')
        .columns(['parent_id', 'name'])
        .unique()
        .where(sql.ref('deleted_at'), 'is', null)
        .execute()
      // Serves listings (one range scan per kind, by name) and finding the children of a
      // node, trashed or not (the unique index above holds only live ones).
      await db.schema
        .createIndex('nodes_parent_kind_name_idx')
        .on('nodes')
        .columns(['parent_id', 'kind', 'name'])
        .execute()
      await db.schema.createIndex('nodes_owner_id_idx').on('nodes').column('owner_id').execute()
      await db.schema.createIndex('nodes_trash_root_id_idx').on('nodes').column('trash_root_id').execute()

      await db.schema
        .createTable('versions')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('node_id', 'text', (c) => c.notNull().references('nodes.id'))
        .addColumn('version', 'integer', (c) => c.notNull())
        .addColumn('size', 'bigint', (c) => c.notNull())
        .addColumn('content_hash', 'text', (c) => c.notNull())
        .addColumn('author_id', 'text', (c) => c.notNull())
        .addColumn('created_at', 'bigint', (c) => c.notNull())
        .addUniqueConstraint('versions_node_id_version_key', ['node_id', 'version'])
        .execute()

      await db.schema
        .createTable('version_chunks')
        .addColumn('version_id', 'text', (c) => c.notNull().references('versions.id').onDelete('cascade'))
        .addColumn('idx', 'integer', (c) => c.notNull())
        .addColumn('chunk_hash', 'text', (c) => c.notNull())
        .addColumn('size', 'integer', (c) => c.notNull())
        .addColumn('byte_offset', 'bigint', (c) => c.notNull())
        .addPrimaryKeyConstraint('version_chunks_pkey', ['version_id', 'idx'])
        .execute()
      await db.schema
        .createIndex('version_chunks_chunk_hash_idx')
        .on('version_chunks')
        .column('chunk_hash')
        .execute()

      await db.schema
        .createTable('chunks')
        .addColumn('hash', 'text', (c) => c.primaryKey())
        .addColumn('size', 'integer', (c) => c.notNull())
        .addColumn('ref_count', 'bigint', (c) => c.notNull().defaultTo(0))
        .addColumn('created_at', 'bigint', (c) => c.notNull())
        .execute()

      await db.schema
        .createTable('uploads')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('user_id', 'text', (c) => c.notNull().references('users.id').onDelete('cascade'))
        .addColumn('folder_id', 'text', (c) => c.notNull())
        .addColumn('filename', 'text', (c) => c.notNull())
        .addColumn('size', 'bigint', (c) => c.notNull())
        .addColumn('chunk_size', 'integer', (c) => c.notNull())
        .addColumn('total_chunks', 'integer', (c) => c.notNull())
        .addColumn('base_version', 'integer')
        .addColumn('proof_nonce', 'text', (c) => c.notNull())
        .addColumn('created_at', 'bigint', (c) => c.notNull())
        .addColumn('expires_at', 'bigint', (c) => c.notNull())
        .execute()
      await db.schema.createIndex('uploads_expires_at_idx').on('uploads').column('expires_at').execute()
      await db.schema.createIndex('uploads_user_id_idx').on('uploads').column('user_id').execute()

      await db.schema
        .createTable('upload_chunks')
        .addColumn('upload_id', 'text', (c) => c.notNull().references('uploads.id').onDelete('cascade'))
        .addColumn('idx', 'integer', (c) => c.notNull())
        .addColumn('chunk_hash', 'text', (c) => c.notNull())
        .addColumn('size', 'integer', (c) => c.notNull())
        .addColumn('byte_offset', 'bigint', (c) => c.notNull())
        .addColumn('state', 'text', (c) => c.notNull())
        .addPrimaryKeyConstraint('upload_chunks_pkey', ['upload_id', 'idx'])
        .addCheckConstraint('upload_chunks_state_check', sql`state in ('needed', 'prove', 'ok')`)
        .execute()
      // Leading with the hash: finds every upload waiting for a chunk; with the upload id,
      // serves setStateByHash.
      await db.schema
        .createIndex('upload_chunks_chunk_hash_idx')
        .on('upload_chunks')
        .columns(['chunk_hash', 'upload_id'])
        .execute()
    },

    async down(db: Kysely<unknown>): Promise<void> {
      for (const table of [
        'upload_chunks',
        'uploads',
        'chunks',
        'version_chunks',
        'versions',
        'nodes',
        'auth_sessions',
        'users',
      ]) {
        await db.schema.dropTable(table).execute()
      }
    },
  }
}

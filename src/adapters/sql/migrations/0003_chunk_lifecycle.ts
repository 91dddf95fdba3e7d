import { type Kysely, type Migration, sql } from 'kysely'

/**
 * The chunk lifecycle of the garbage collector and scrub, and the trash's lookups.
 *
 * - `chunks.state`: `live` (the bytes are durable and may be referenced) or `deleting` (claimed
 *   by the collector: its bytes are being removed and nothing may reference it again). A row
 *   goes live -> deleting -> gone, never back; the bytes go only while the row says deleting.
 * - `chunks.marked_at`: when the collector's mark phase found the chunk unreferenced (cleared
 *   when it is referenced again); for a `deleting` row, when it was claimed.
 * - `chunks.verified_at`: when scrub last read and checked the bytes (0: never), so that a
 *   partial scrub takes the least recently checked first and a schedule covers everything.
 *
 * The partial index holds only unreferenced chunks, so the collector's work grows with the
 * garbage, not with the store.
 */
export const chunkLifecycleMigration: Migration = {
  async up(db: Kysely<unknown>) {
    await db.schema
      .alterTable('chunks')
      .addColumn('state', 'text', (c) =>
        c.notNull().defaultTo('live').check(sql`state in ('live', 'deleting')`),
      )
      .execute()
    await db.schema.alterTable('chunks').addColumn('marked_at', 'bigint').execute()
    await db.schema
      .alterTable('chunks')
      .addColumn('verified_at', 'bigint', (c) => c.notNull().defaultTo(0))
      .execute()
    await db.schema
      .createIndex('chunks_unreferenced_idx')
      .on('chunks')
      .columns(['marked_at', 'hash'])
      .where(sql.ref('ref_count'), '=', 0)
      .execute()
    await db.schema
      .createIndex('chunks_verified_at_idx')
      .on('chunks')
      .columns(['verified_at', 'hash'])
      .execute()

    // Trash roots (the nodes a user deleted): listed per user, emptied by age.
    await db.schema
      .createIndex('nodes_trash_roots_owner_idx')
      .on('nodes')
      .columns(['owner_id', 'deleted_at', 'id'])
      .where(sql.ref('trash_root_id'), '=', sql.ref('id'))
      .execute()
    await db.schema
      .createIndex('nodes_trash_roots_deleted_at_idx')
      .on('nodes')
      .column('deleted_at')
      .where(sql.ref('trash_root_id'), '=', sql.ref('id'))
      .execute()
    // Versions by file (the unique key leads with node_id) serve listing and pruning.
  },
  async down(db: Kysely<unknown>) {
    await db.schema.dropIndex('nodes_trash_roots_deleted_at_idx').execute()
    await db.schema.dropIndex('nodes_trash_roots_owner_idx').execute()
    await db.schema.dropIndex('chunks_verified_at_idx').execute()
    await db.schema.dropIndex('chunks_unreferenced_idx').execute()
    for (const column of ['verified_at', 'marked_at', 'state']) {
      await db.schema.alterTable('chunks').dropColumn(column).execute()
    }
  },
}

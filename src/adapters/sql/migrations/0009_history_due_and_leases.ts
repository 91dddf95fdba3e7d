import { type Kysely, type Migration, sql } from 'kysely'

/**
 * Upkeep that follows the work, not the store (issue: integrity).
 *
 * - `nodes.history_due_at`: when the retention policy may next drop a version of this file
 *   (domain/retention.ts `nextPruneAt`); null when nothing ever will. Kept in the transaction of
 *   every prune, so the periodic sweep visits only files that are due, through a partial index
 *   that holds only files with a due time. Every file with history starts due (0: the first
 *   sweep after upgrading visits each once and computes its real due time); this file must not
 *   compute due times itself, because a released migration must not depend on live code.
 * - `settings`: small key/value facts about the data. The sweep keeps there the fingerprint of
 *   the retention policy the due times were computed under, and marks every file due again
 *   when the running policy's differs.
 * - `leases`: one holder at a time for a named job (upkeep), until `expires_at`.
 */
export const historyDueAndLeasesMigration: Migration = {
  async up(db: Kysely<unknown>) {
    await db.schema.alterTable('nodes').addColumn('history_due_at', 'bigint').execute()
    await db.schema
      .createIndex('nodes_history_due_idx')
      .on('nodes')
      .columns(['history_due_at', 'id'])
      .where(sql.ref('history_due_at'), 'is not', null)
      .execute()
    await sql`
      update nodes set history_due_at = 0
      where id in (select node_id from versions group by node_id having count(*) > 1)
    `.execute(db)

    await db.schema
      .createTable('settings')
      .addColumn('name', 'text', (c) => c.primaryKey())
      .addColumn('value', 'text', (c) => c.notNull())
      .execute()

    await db.schema
      .createTable('leases')
      .addColumn('name', 'text', (c) => c.primaryKey())
      .addColumn('holder', 'text', (c) => c.notNull())
      .addColumn('expires_at', 'bigint', (c) => c.notNull())
      .execute()
  },
  async down(db: Kysely<unknown>) {
    await db.schema.dropTable('leases').execute()
    await db.schema.dropTable('settings').execute()
    await db.schema.dropIndex('nodes_history_due_idx').execute()
    await db.schema.alterTable('nodes').dropColumn('history_due_at').execute()
  },
}

import { type Kysely, type Migration, sql } from 'kysely'

/**
 * Chunk copies get generations, and damaged chunks get marked (issue: integrity).
 *
 * - `chunks.generation`: which stored copy holds the chunk's bytes (domain/blob-key.ts says
 *   why every write gets one). Rows from before keep '' and their bare-hash file names.
 * - `chunks.damaged_at`: when a download or scrub found the copy's bytes wrong or gone. A
 *   damaged chunk stays referenced, but is no longer offered for deduplication: the next
 *   upload of it stores a good copy under a new generation and clears the mark. A column
 *   rather than a third `state`, because SQLite cannot change the CHECK of migration 0003
 *   without rebuilding the table.
 */
export const chunkGenerationsMigration: Migration = {
  async up(db: Kysely<unknown>) {
    await db.schema
      .alterTable('chunks')
      .addColumn('generation', 'text', (c) => c.notNull().defaultTo(''))
      .execute()
    await db.schema.alterTable('chunks').addColumn('damaged_at', 'bigint').execute()
    // Holds only the damaged, so that counting them (scrub, /metrics) costs nothing.
    await db.schema
      .createIndex('chunks_damaged_idx')
      .on('chunks')
      .column('damaged_at')
      .where(sql.ref('damaged_at'), 'is not', null)
      .execute()
  },
  async down(db: Kysely<unknown>) {
    await db.schema.dropIndex('chunks_damaged_idx').execute()
    await db.schema.alterTable('chunks').dropColumn('damaged_at').execute()
    await db.schema.alterTable('chunks').dropColumn('generation').execute()
  },
}

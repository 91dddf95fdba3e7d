import type { Kysely, Migration } from 'kysely'

/**
 * `nodes.listing_version`: bumped in the same transaction as every change to a folder's live
 * children, so a listing cached under one value is exactly current while the value holds, on
 * any number of API nodes, without invalidation messages.
 */
export const listingVersionMigration: Migration = {
  async up(db: Kysely<unknown>) {
    await db.schema
      .alterTable('nodes')
      .addColumn('listing_version', 'bigint', (c) => c.notNull().defaultTo(0))
      .execute()
  },
  async down(db: Kysely<unknown>) {
    await db.schema.alterTable('nodes').dropColumn('listing_version').execute()
  },
}

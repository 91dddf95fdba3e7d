import { type Kysely, type Migration, type MigrationProvider, Migrator } from 'kysely'
import type { SqlDialect } from '../dialect.js'
import { initialMigration } from './0001_initial.js'
import { listingVersionMigration } from './0002_listing_version.js'
import { chunkLifecycleMigration } from './0003_chunk_lifecycle.js'
import { changeJournalMigration } from './0004_change_journal.js'
import { caseInsensitiveNamesMigration } from './0005_case_insensitive_names.js'
import { sharingMigration } from './0006_sharing.js'

/**
 * Every migration, by name; names sort in the order they run. A migration, once released,
 * is never edited: a change is a new file.
 */
function migrations(dialect: SqlDialect): Record<string, Migration> {
  return {
    '0001_initial': initialMigration(dialect),
    '0002_listing_version': listingVersionMigration,
    '0003_chunk_lifecycle': chunkLifecycleMigration,
    '0004_change_journal': changeJournalMigration,
    '0005_case_insensitive_names': caseInsensitiveNamesMigration,
    '0006_sharing': sharingMigration,
  }
}

/**
 * Brings the schema to the latest version; throws when a migration fails (that migration's
 * transaction is rolled back: both databases have transactional DDL). On PostgreSQL Kysely
 * holds an advisory lock meanwhile, so API nodes starting together migrate once.
 */
export async function migrateToLatest(db: Kysely<unknown>, dialect: SqlDialect): Promise<void> {
  const provider: MigrationProvider = { getMigrations: async () => migrations(dialect) }
  const { error, results } = await new Migrator({ db, provider }).migrateToLatest()
  if (error !== undefined) {
    const failed = results?.find((result) => result.status === 'Error')?.migrationName
    throw new Error(`Database migration ${failed ?? ''} failed: ${String(error)}`, { cause: error })
  }
}

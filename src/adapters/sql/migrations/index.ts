import type { Kysely, Migration } from 'kysely'
import type { SqlDialect } from '../dialect.js'
import { initialMigration } from './0001_initial.js'
import { listingVersionMigration } from './0002_listing_version.js'
import { chunkLifecycleMigration } from './0003_chunk_lifecycle.js'
import { changeJournalMigration } from './0004_change_journal.js'
import { caseInsensitiveNamesMigration } from './0005_case_insensitive_names.js'
import { sharingMigration } from './0006_sharing.js'
import { chunkGenerationsMigration } from './0007_chunk_generations.js'
import { uploadCompletionMigration } from './0008_upload_completion.js'
import { historyDueAndLeasesMigration } from './0009_history_due_and_leases.js'
import { sharePasswordAttemptsMigration } from './0010_share_password_attempts.js'
import { uploadReservationsMigration } from './0011_upload_reservations.js'
import { repairLinkExpiriesMigration } from './0012_repair_link_expiries.js'
import { replacementCreditsMigration } from './0013_replacement_credits.js'
import { runMigrations } from './runner.js'

/**
 * Every migration, by name; names sort in the order they run. A migration, once released,
 * is never edited: a change is a new file. It imports nothing from the live code either
 * (0005 keeps frozen copies of the functions it used), so that it does tomorrow exactly what
 * it did when released.
 */
export function migrations(dialect: SqlDialect): Record<string, Migration> {
  return {
    '0001_initial': initialMigration(dialect),
    '0002_listing_version': listingVersionMigration,
    '0003_chunk_lifecycle': chunkLifecycleMigration,
    '0004_change_journal': changeJournalMigration,
    '0005_case_insensitive_names': caseInsensitiveNamesMigration,
    '0006_sharing': sharingMigration,
    '0007_chunk_generations': chunkGenerationsMigration,
    '0008_upload_completion': uploadCompletionMigration,
    '0009_history_due_and_leases': historyDueAndLeasesMigration,
    '0010_share_password_attempts': sharePasswordAttemptsMigration,
    '0011_upload_reservations': uploadReservationsMigration,
    '0012_repair_link_expiries': repairLinkExpiriesMigration,
    '0013_replacement_credits': replacementCreditsMigration,
  }
}

/**
 * Brings the schema to the latest version (runner.ts). Each migration runs in a transaction of
 * its own with the row recording it, on SQLite as on PostgreSQL (both have transactional DDL),
 * so one that fails is rolled back whole and the ones before it stay applied. Throws when one
 * fails. API nodes starting together apply each migration once (an advisory lock on
 * PostgreSQL, the write lock on SQLite).
 */
export async function migrateToLatest(db: Kysely<unknown>, dialect: SqlDialect): Promise<void> {
  await runMigrations(db, dialect, migrations(dialect))
}

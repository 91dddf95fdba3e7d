import { type Kysely, type Migration, sql } from 'kysely'

/** The largest time a JavaScript Date holds (±8.64e15 ms from 1970). */
const LAST_DATE_MS = 8_640_000_000_000_000

/**
 * Links saved before expiresAt was checked (issue: hostile clients) may hold an expiry no date
 * can hold (1e300, 8.64e15 + 1), which made every listing of their owner's links fail, or, on
 * SQLite, a fraction of a millisecond. An expiry beyond the last date was a way of saying
 * "never": it becomes no expiry; a fraction is dropped.
 */
export const repairLinkExpiriesMigration: Migration = {
  async up(db: Kysely<unknown>) {
    await sql`UPDATE share_links SET expires_at = NULL
      WHERE expires_at > ${LAST_DATE_MS} OR expires_at < ${-LAST_DATE_MS}`.execute(db)
    await sql`UPDATE share_links SET expires_at = CAST(expires_at AS BIGINT)
      WHERE expires_at IS NOT NULL AND expires_at <> CAST(expires_at AS BIGINT)`.execute(db)
  },
  async down() {
    // Nothing to undo: the values it replaced named no date.
  },
}

import type { JournalEntry, NewChange } from '../../domain/journal.js'
import type { Millis } from '../../domain/model.js'

/** A change for one user's journal. */
export interface JournalItem {
  userId: string
  change: NewChange
}

/** The change journal (API.md, Sync; migration 0004 explains the positions). */
export interface JournalRepository {
  /**
   * Appends the items to their users' journals in the caller's transaction, each user's in the
   * order given, and answers the entries with their positions. Takes the users' journal heads
   * in id order (row locks until commit on PostgreSQL), so that one user's entries commit in
   * position order and two transactions fanning out to the same users never deadlock. Call it
   * once per transaction, at its end, so the heads are held as briefly as possible.
   */
  append(items: readonly JournalItem[]): Promise<JournalEntry[]>
  /** The user's entries after position `after`, oldest first, at most `limit`. */
  after(userId: string, after: number, limit: number): Promise<JournalEntry[]>
  /**
   * The user's last position handed out (`head`) and the last one compacted away (`floor`):
   * every entry in (floor, head] is there. Both 0 for a journal never written.
   */
  bounds(userId: string): Promise<{ head: number; floor: number }>
  /**
   * Compacts up to `userLimit` journals: drops each one's entries up to its last one older
   * than `before`, and all but its newest `maxEntries`, raising its floor to match (in one
   * transaction per journal). Answers how many entries went and whether journals remain.
   */
  compact(before: Millis, maxEntries: number, userLimit: number): Promise<{ removed: number; more: boolean }>
}

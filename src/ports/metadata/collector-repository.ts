import type { BlobKey } from '../../domain/blob-key.js'
import type { ChunkHash } from '../../domain/hashes.js'
import type { ChunkRecord, Millis } from '../../domain/model.js'

/** The garbage collector's queries (services/garbage-collector.ts explains the protocol). */
export interface CollectorRepository {
  /** Marks live unreferenced chunks that are not marked yet; answers how many. */
  mark(now: Millis): Promise<number>
  /** How many unreferenced chunks a mark would mark now (for a dry run). */
  countUnmarked(): Promise<number>
  /**
   * Claims (live -> deleting) up to `limit` chunks that are still unreferenced, were marked at
   * or before `markedBefore`, and are named by no upload session; a conditional UPDATE, so a
   * chunk referenced again meanwhile is left alone. Answers what it claimed. Call with the
   * `collect` guard held.
   */
  claim(markedBefore: Millis, now: Millis, limit: number): Promise<ChunkRecord[]>
  /** What `claim` would take, without taking it (for a dry run). */
  claimable(markedBefore: Millis, limit: number): Promise<ChunkRecord[]>
  /**
   * Claims left by a collector that stopped (crashed) before finishing them: `deleting` rows
   * claimed at or before `claimedBefore`. Re-stamps them with `now`, so that two collectors
   * cannot both take one over.
   */
  takeOverStale(claimedBefore: Millis, now: Millis, limit: number): Promise<ChunkRecord[]>
  /**
   * Removes the rows of claimed chunks whose copies are gone: only rows still `deleting` and
   * still naming that copy, so a late call can never remove a chunk stored again since.
   * Answers the copies whose rows this call removed (another collector may have been first).
   */
  forget(copies: readonly BlobKey[]): Promise<BlobKey[]>
  /** The generation the row of each of these hashes names, in any state (no row: absent). */
  generations(hashes: readonly ChunkHash[]): Promise<Map<ChunkHash, string>>
  /**
   * Of these stored copies, the orphans: copies no row names (left by a crash between writing
   * bytes and recording them, or by the loser of two puts of one chunk) whose hash no upload
   * session names either. Nothing can ever come to name such a copy (an upload records its copy
   * only while its session exists), so they may be deleted. Call with the `collect` guard held.
   */
  orphans(copies: readonly BlobKey[]): Promise<BlobKey[]>
}

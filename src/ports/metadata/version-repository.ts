import type { ChunkHash } from '../../domain/hashes.js'
import type { ChunkRef, Millis, VersionRecord } from '../../domain/model.js'

export interface VersionRepository {
  /** Inserts a version with its ordered chunk list. */
  insert(version: VersionRecord, chunks: readonly ChunkRef[]): Promise<void>
  find(nodeId: string, version: number): Promise<VersionRecord | null>
  /** Chunks of a version in order, starting with the one that contains byte `fromOffset`. */
  chunks(versionId: string, fromOffset?: number): Promise<ChunkRef[]>
  /**
   * A version and, read in the same statement (so in one snapshot: a version pruned meanwhile
   * is either wholly there or not at all), its chunks from the one containing byte
   * `fromOffset` to the one containing byte `toOffset` (the last, when not given), each with the
   * copy that holds its bytes. Null when there is no such version.
   */
  readPlan(nodeId: string, version: number, fromOffset: number, toOffset?: number): Promise<ReadPlan | null>
  /** Every version of a file, newest first. */
  list(nodeId: string): Promise<VersionRecord[]>
  /** The ids of every version of these files. */
  idsOf(nodeIds: readonly string[]): Promise<string[]>
  /**
   * Deletes these versions with their chunk lists and answers how many entries each chunk
   * lost, for the caller to drop from the reference counts in the same transaction.
   */
  delete(versionIds: readonly string[]): Promise<Map<ChunkHash, number>>
  /**
   * Records when the retention policy may next drop one of the file's versions (null: never),
   * in the transaction that pruned it, so that the sweep visits only files that are due.
   */
  setHistoryDue(nodeId: string, dueAt: Millis | null): Promise<void>
  /**
   * Files due at `now` (due time at or before it), oldest due first, after `after` in that
   * order; on an index that holds only files with a due time, so the cost follows what is due.
   */
  historyDue(now: Millis, after: HistoryDue | null, limit: number): Promise<HistoryDue[]>
  /**
   * Makes every file with more than one version due at `now`, in one statement (the policy
   * changed, so every due time computed under the old one is stale). Answers how many.
   */
  markAllHistoryDue(now: Millis): Promise<number>
}

/** A file whose history the sweep should look at, and since when. */
export interface HistoryDue {
  nodeId: string
  dueAt: Millis
}

/** A version with the chunks a download reads (VersionRepository.readPlan). */
export interface ReadPlan {
  version: VersionRecord
  chunks: ChunkCopy[]
}

/** A chunk of a version as a download reads it: where its bytes are, and whether they are sound. */
export interface ChunkCopy extends ChunkRef {
  /** The copy that holds the bytes; null when no live row names the chunk (corruption). */
  generation: string | null
  /** Found wrong or missing before (ChunkRecord.damaged). */
  damaged: boolean
}

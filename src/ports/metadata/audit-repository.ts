import type { ChunkHash } from '../../domain/hashes.js'
import type { ChunkRecord, Millis } from '../../domain/model.js'

/** Scrub's queries: which chunks to check, and whether counts and references add up. */
export interface AuditRepository {
  /** Live chunks, least recently verified first. */
  leastRecentlyVerified(limit: number): Promise<ChunkRecord[]>
  /** Live chunks in hash order after `afterHash` (a full pass). */
  liveChunks(afterHash: ChunkHash | null, limit: number): Promise<ChunkRecord[]>
  markVerified(hashes: readonly ChunkHash[], now: Millis): Promise<void>
  countLive(): Promise<number>
  /** Live chunks marked damaged and not repaired yet. */
  countDamaged(): Promise<number>
  /**
   * Versions whose sizes disagree: with a chunk whose stored size differs from the size the
   * version declares for it, or whose chunks do not add up to the version's size.
   */
  sizeMismatches(): Promise<{ nodeId: string; version: number; problem: string }[]>
  /** Chunks whose stored count differs from a recount of the version entries naming them. */
  refCountMismatches(): Promise<{ hash: ChunkHash; refCount: number; actual: number }[]>
  /** Hashes that some version names but that have no live row. */
  danglingReferences(): Promise<ChunkHash[]>
}

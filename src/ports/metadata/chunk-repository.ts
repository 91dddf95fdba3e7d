import type { BlobKey } from '../../domain/blob-key.js'
import type { ChunkHash } from '../../domain/hashes.js'
import type { ChunkRecord, Millis } from '../../domain/model.js'

export interface ChunkRepository {
  /**
   * Of these hashes, the chunks that may be deduplicated against, with their sizes: a live row
   * (the bytes are durable) that is not damaged.
   */
  sound(hashes: readonly ChunkHash[]): Promise<Map<ChunkHash, number>>
  /**
   * Of these hashes, the ones that some version of a non-purged file owned by `userId`
   * references: chunks the user has shown to hold before, which need no proof.
   */
  readableBy(userId: string, hashes: readonly ChunkHash[]): Promise<Set<ChunkHash>>
  /**
   * Records that a copy holding the bytes of `hash` is durable. Idempotent: answers true when
   * this call created the row, false when a row existed (then the caller's copy is not the
   * chunk's, and the caller removes it).
   */
  insert(chunk: BlobKey & { size: number }, createdAt: Millis): Promise<boolean>
  /**
   * Makes the copy `to` the chunk's bytes in place of the damaged copy `from`, clearing the
   * damage. Answers false, changing nothing, unless the row is live, damaged and names `from`
   * (a concurrent repair won, or the collector claimed the chunk).
   */
  replaceDamaged(hash: ChunkHash, from: string, to: string, now: Millis): Promise<boolean>
  /**
   * Marks the chunk damaged when `key` is still its live, sound copy; answers whether this call
   * marked it (false for a copy replaced or collected meanwhile: not the chunk's fault).
   */
  markDamaged(key: BlobKey, now: Millis): Promise<boolean>
  /**
   * Adds to reference counts, one entry per distinct hash, and clears their collector marks.
   * Only live chunks can be referenced: when one of them is not (the collector claimed it),
   * throws AppError CHUNKS_MISSING and the transaction rolls back.
   *
   * Inside `transaction`, reference changes are gathered and applied when the work is done,
   * in one pass over the rows in hash order (so transactions sharing chunks never deadlock):
   * the error then comes from `transaction` itself. Outside one, at once.
   */
  addReferences(counts: ReadonlyMap<ChunkHash, number>): Promise<void>
  /** Subtracts from reference counts (the entries of deleted versions); applied as addReferences is. */
  dropReferences(counts: ReadonlyMap<ChunkHash, number>): Promise<void>
  find(hash: ChunkHash): Promise<ChunkRecord | null>
  /**
   * Orders the transactions that make chunks needed (creating an upload session, recording a
   * chunk for one, completing one) against the collector's claims, for the rest of the
   * transaction: `use` is shared, `collect` exclusive. A claim then sees every session that
   * committed before it, and a session created after it sees the claim. (PostgreSQL: an
   * advisory transaction lock, because its statements read a snapshot that may miss a session
   * committed a moment before; SQLite serialises writers already.)
   */
  guard(mode: 'use' | 'collect'): Promise<void>
}

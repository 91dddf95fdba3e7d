import type { Kysely } from 'kysely'
import type { ChunkHash } from '../../domain/hashes.js'
import type { ChunkRecord, Millis } from '../../domain/model.js'
import type { CollectorRepository } from '../../ports/metadata-store.js'
import { batches, ROWS_PER_INSERT, VALUES_PER_STATEMENT } from './batches.js'
import type { Database } from './schema.js'
import { toChunk } from './sql-chunk-repository.js'

/**
 * Every query here filters on `ref_count = 0` first, so that it runs on the partial index
 * `chunks_unreferenced_idx`, which holds the garbage and nothing else.
 */
export class SqlCollectorRepository implements CollectorRepository {
  constructor(private readonly db: Kysely<Database>) {}

  async mark(now: Millis): Promise<number> {
    const result = await this.db
      .updateTable('chunks')
      .set({ marked_at: now })
      .where('ref_count', '=', 0)
      .where('marked_at', 'is', null)
      .where('state', '=', 'live')
      .executeTakeFirst()
    return Number(result.numUpdatedRows)
  }

  async countUnmarked(): Promise<number> {
    const row = await this.db
      .selectFrom('chunks')
      .select((eb) => eb.fn.countAll<number>().as('count'))
      .where('ref_count', '=', 0)
      .where('marked_at', 'is', null)
      .where('state', '=', 'live')
      .executeTakeFirstOrThrow()
    return Number(row.count)
  }

  /** Unreferenced, marked long enough ago, live, and named by no upload session. */
  private sweepable(markedBefore: Millis) {
    return this.db
      .selectFrom('chunks')
      .where('ref_count', '=', 0)
      .where('marked_at', '<=', markedBefore)
      .where('state', '=', 'live')
      .where(({ not, exists, selectFrom }) =>
        not(
          exists(
            selectFrom('upload_chunks')
              .select('upload_chunks.idx')
              .whereRef('upload_chunks.chunk_hash', '=', 'chunks.hash'),
          ),
        ),
      )
  }

  async claimable(markedBefore: Millis, limit: number): Promise<ChunkRecord[]> {
    const rows = await this.sweepable(markedBefore)
      .select(['hash', 'size', 'ref_count', 'state'])
      .orderBy('marked_at')
      .limit(limit)
      .execute()
    return rows.map(toChunk)
  }

  async claim(markedBefore: Millis, now: Millis, limit: number): Promise<ChunkRecord[]> {
    // The candidates are chosen and claimed in one statement whose WHERE is re-checked row by
    // row: a chunk referenced again (a dedup hit) or named by a session since the mark stays.
    // The candidates come from the partial index; the claim itself must go by primary key.
    // `ref_count < 1` (never negative: the same as `= 0`) keeps the outer WHERE from matching the
    // partial index: PostgreSQL, whose statistics still say nothing is marked (the mark came after
    // the last ANALYZE), would otherwise scan every marked chunk and re-run the subquery for each,
    // quadratic in the garbage (13 s per batch with 10k garbage chunks; bench/gc.ts).
    const candidates = this.sweepable(markedBefore).select('hash').orderBy('marked_at').limit(limit)
    const rows = await this.db
      .updateTable('chunks')
      .set({ state: 'deleting', marked_at: now })
      .where('hash', 'in', candidates)
      .where('ref_count', '<', 1)
      .where('state', '=', 'live')
      .where('marked_at', '<=', markedBefore)
      .returning(['hash', 'size', 'ref_count', 'state'])
      .execute()
    return rows.map(toChunk)
  }

  async takeOverStale(claimedBefore: Millis, now: Millis, limit: number): Promise<ChunkRecord[]> {
    const stale = this.db
      .selectFrom('chunks')
      .select('hash')
      .where('ref_count', '=', 0)
      .where('state', '=', 'deleting')
      .where('marked_at', '<=', claimedBefore)
      .limit(limit)
    const rows = await this.db
      .updateTable('chunks')
      .set({ marked_at: now })
      .where('hash', 'in', stale)
      .where('state', '=', 'deleting')
      .where('marked_at', '<=', claimedBefore)
      .returning(['hash', 'size', 'ref_count', 'state'])
      .execute()
    return rows.map(toChunk)
  }

  async forget(hashes: readonly ChunkHash[]): Promise<void> {
    for (const batch of batches(hashes, VALUES_PER_STATEMENT)) {
      await this.db.deleteFrom('chunks').where('hash', 'in', batch).where('state', '=', 'deleting').execute()
    }
  }

  async known(hashes: readonly ChunkHash[]): Promise<Set<ChunkHash>> {
    const found = new Set<ChunkHash>()
    for (const batch of batches(hashes, VALUES_PER_STATEMENT)) {
      const rows = await this.db.selectFrom('chunks').select('hash').where('hash', 'in', batch).execute()
      for (const row of rows) found.add(row.hash)
    }
    return found
  }

  async claimOrphans(
    orphans: readonly { hash: ChunkHash; size: number }[],
    now: Millis,
  ): Promise<ChunkHash[]> {
    const claimed: ChunkHash[] = []
    for (const batch of batches(orphans, ROWS_PER_INSERT)) {
      const named = await this.db
        .selectFrom('upload_chunks')
        .select('chunk_hash')
        .where(
          'chunk_hash',
          'in',
          batch.map((orphan) => orphan.hash),
        )
        .execute()
      const protectedHashes = new Set(named.map((row) => row.chunk_hash))
      const free = batch.filter((orphan) => !protectedHashes.has(orphan.hash))
      if (free.length === 0) continue
      // A row that appeared meanwhile (the bytes were recorded after all) wins: DO NOTHING.
      const rows = await this.db
        .insertInto('chunks')
        .values(
          free.map((orphan) => ({
            hash: orphan.hash,
            size: orphan.size,
            ref_count: 0,
            created_at: now,
            state: 'deleting' as const,
            marked_at: now,
          })),
        )
        .onConflict((oc) => oc.column('hash').doNothing())
        .returning('hash')
        .execute()
      claimed.push(...rows.map((row) => row.hash))
    }
    return claimed
  }
}

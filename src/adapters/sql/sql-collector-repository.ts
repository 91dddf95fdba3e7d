import type { Kysely } from 'kysely'
import type { BlobKey } from '../../domain/blob-key.js'
import type { ChunkHash } from '../../domain/hashes.js'
import type { ChunkRecord, Millis } from '../../domain/model.js'
import type { CollectorRepository } from '../../ports/metadata/collector-repository.js'
import { batches, VALUES_PER_STATEMENT } from './batches.js'
import type { SqlDialect } from './dialect.js'
import type { Database } from './schema.js'
import { CHUNK_COLUMNS, toChunk } from './sql-chunk-repository.js'

/**
 * Every query here filters on `ref_count = 0` first, so that it runs on the partial index
 * `chunks_unreferenced_idx`, which holds the garbage and nothing else.
 */
export class SqlCollectorRepository implements CollectorRepository {
  constructor(
    private readonly db: Kysely<Database>,
    private readonly dialect: SqlDialect,
  ) {}

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
      .select(CHUNK_COLUMNS)
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
      .returning(CHUNK_COLUMNS)
      .execute()
    return rows.map(toChunk)
  }

  async takeOverStale(claimedBefore: Millis, now: Millis, limit: number): Promise<ChunkRecord[]> {
    // In hash order, like every lock on chunk rows; rows another collector is forgetting or
    // taking over this instant are skipped, not waited for (they are being handled).
    const stale = this.db
      .selectFrom('chunks')
      .select('hash')
      .where('ref_count', '=', 0)
      .where('state', '=', 'deleting')
      .where('marked_at', '<=', claimedBefore)
      .orderBy('hash')
      .limit(limit)
      .$if(this.dialect === 'postgres', (qb) => qb.forUpdate().skipLocked())
    const rows = await this.db
      .updateTable('chunks')
      .set({ marked_at: now })
      .where('hash', 'in', stale)
      .where('state', '=', 'deleting')
      .where('marked_at', '<=', claimedBefore)
      .returning(CHUNK_COLUMNS)
      .execute()
    return rows.map(toChunk)
  }

  async forget(copies: readonly BlobKey[]): Promise<BlobKey[]> {
    const forgotten: BlobKey[] = []
    const sorted = [...copies].sort((a, b) => (a.hash < b.hash ? -1 : a.hash > b.hash ? 1 : 0))
    for (const batch of batches(sorted, VALUES_PER_STATEMENT / 2)) {
      // Locked in hash order first (a DELETE takes its rows in whatever order it finds them):
      // two collectors that took over the same claims then wait for each other, never deadlock.
      const doomed = this.db
        .selectFrom('chunks')
        .select('hash')
        .where((eb) => eb.or(batch.map(({ hash, generation }) => eb.and({ hash, generation }))))
        .where('state', '=', 'deleting')
        .orderBy('hash')
        .$if(this.dialect === 'postgres', (qb) => qb.forUpdate())
      const rows = await this.db
        .deleteFrom('chunks')
        .where('hash', 'in', doomed)
        .where((eb) => eb.or(batch.map(({ hash, generation }) => eb.and({ hash, generation }))))
        .where('state', '=', 'deleting')
        .returning(['hash', 'generation'])
        .execute()
      forgotten.push(...rows)
    }
    return forgotten
  }

  async generations(hashes: readonly ChunkHash[]): Promise<Map<ChunkHash, string>> {
    const found = new Map<ChunkHash, string>()
    for (const batch of batches(hashes, VALUES_PER_STATEMENT)) {
      const rows = await this.db
        .selectFrom('chunks')
        .select(['hash', 'generation'])
        .where('hash', 'in', batch)
        .execute()
      for (const row of rows) found.set(row.hash, row.generation)
    }
    return found
  }

  async orphans(copies: readonly BlobKey[]): Promise<BlobKey[]> {
    const orphans: BlobKey[] = []
    for (const batch of batches(copies, VALUES_PER_STATEMENT)) {
      const hashes = [...new Set(batch.map((copy) => copy.hash))]
      const named = await this.generations(hashes)
      const inSessions = await this.db
        .selectFrom('upload_chunks')
        .select('chunk_hash')
        .distinct()
        .where('chunk_hash', 'in', hashes)
        .execute()
      const protectedHashes = new Set(inSessions.map((row) => row.chunk_hash))
      orphans.push(
        ...batch.filter(
          (copy) => named.get(copy.hash) !== copy.generation && !protectedHashes.has(copy.hash),
        ),
      )
    }
    return orphans
  }
}

import { type Kysely, sql } from 'kysely'
import type { ChunkHash } from '../../domain/hashes.js'
import type { ChunkRecord, Millis } from '../../domain/model.js'
import type { AuditRepository } from '../../ports/metadata-store.js'
import { batches, VALUES_PER_STATEMENT } from './batches.js'
import type { Database } from './schema.js'
import { toChunk } from './sql-chunk-repository.js'

export class SqlAuditRepository implements AuditRepository {
  constructor(private readonly db: Kysely<Database>) {}

  async leastRecentlyVerified(limit: number): Promise<ChunkRecord[]> {
    const rows = await this.db
      .selectFrom('chunks')
      .select(['hash', 'size', 'ref_count', 'state'])
      .where('state', '=', 'live')
      .orderBy('verified_at')
      .orderBy('hash')
      .limit(limit)
      .execute()
    return rows.map(toChunk)
  }

  async liveChunks(afterHash: ChunkHash | null, limit: number): Promise<ChunkRecord[]> {
    const rows = await this.db
      .selectFrom('chunks')
      .select(['hash', 'size', 'ref_count', 'state'])
      .where('state', '=', 'live')
      .$if(afterHash !== null, (qb) => qb.where('hash', '>', afterHash!))
      .orderBy('hash')
      .limit(limit)
      .execute()
    return rows.map(toChunk)
  }

  async markVerified(hashes: readonly ChunkHash[], now: Millis): Promise<void> {
    for (const batch of batches(hashes, VALUES_PER_STATEMENT)) {
      await this.db.updateTable('chunks').set({ verified_at: now }).where('hash', 'in', batch).execute()
    }
  }

  async countLive(): Promise<number> {
    const row = await this.db
      .selectFrom('chunks')
      .select((eb) => eb.fn.countAll<number>().as('count'))
      .where('state', '=', 'live')
      .executeTakeFirstOrThrow()
    return Number(row.count)
  }

  async refCountMismatches(): Promise<{ hash: ChunkHash; refCount: number; actual: number }[]> {
    const rows = await sql<{ hash: string; ref_count: number | string; actual: number | string }>`
      select c.hash, c.ref_count, coalesce(v.n, 0) as actual
      from chunks c
      left join (
        select chunk_hash, count(*) as n from version_chunks group by chunk_hash
      ) v on v.chunk_hash = c.hash
      where c.ref_count <> coalesce(v.n, 0)
      order by c.hash`.execute(this.db)
    return rows.rows.map((row) => ({
      hash: row.hash,
      refCount: Number(row.ref_count),
      actual: Number(row.actual),
    }))
  }

  async danglingReferences(): Promise<ChunkHash[]> {
    const rows = await this.db
      .selectFrom('version_chunks')
      .leftJoin('chunks', (join) =>
        join.onRef('chunks.hash', '=', 'version_chunks.chunk_hash').on('chunks.state', '=', 'live'),
      )
      .select('version_chunks.chunk_hash')
      .distinct()
      .where('chunks.hash', 'is', null)
      .orderBy('version_chunks.chunk_hash')
      .execute()
    return rows.map((row) => row.chunk_hash)
  }
}

import { type Kysely, sql } from 'kysely'
import type { ChunkHash } from '../../domain/hashes.js'
import type { ChunkRecord, Millis } from '../../domain/model.js'
import type { AuditRepository } from '../../ports/metadata/audit-repository.js'
import { batches, VALUES_PER_STATEMENT } from './batches.js'
import type { Database } from './schema.js'
import { CHUNK_COLUMNS, toChunk } from './sql-chunk-repository.js'

export class SqlAuditRepository implements AuditRepository {
  constructor(private readonly db: Kysely<Database>) {}

  async leastRecentlyVerified(limit: number): Promise<ChunkRecord[]> {
    const rows = await this.db
      .selectFrom('chunks')
      .select(CHUNK_COLUMNS)
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
      .select(CHUNK_COLUMNS)
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

  async countDamaged(): Promise<number> {
    const row = await this.db
      .selectFrom('chunks')
      .select((eb) => eb.fn.countAll<number>().as('count'))
      .where('damaged_at', 'is not', null)
      .where('state', '=', 'live')
      .executeTakeFirstOrThrow()
    return Number(row.count)
  }

  async sizeMismatches(): Promise<{ nodeId: string; version: number; problem: string }[]> {
    // A chunk's size is a fact of its bytes (the upload checked them); a version that declares
    // another size for it describes bytes that do not exist.
    const chunkSizes = await sql<{
      node_id: string
      version: number
      idx: number
      declared: number
      stored: number
    }>`
      select v.node_id, v.version, vc.idx, vc.size as declared, c.size as stored
      from version_chunks vc
      join versions v on v.id = vc.version_id
      join chunks c on c.hash = vc.chunk_hash
      where vc.size <> c.size
      order by v.node_id, v.version, vc.idx`.execute(this.db)
    const totals = await sql<{ node_id: string; version: number; size: number; total: number | string }>`
      select v.node_id, v.version, v.size, coalesce(sum(vc.size), 0) as total
      from versions v
      left join version_chunks vc on vc.version_id = v.id
      group by v.id, v.node_id, v.version, v.size
      having v.size <> coalesce(sum(vc.size), 0)
      order by v.node_id, v.version`.execute(this.db)
    return [
      ...chunkSizes.rows.map((row) => ({
        nodeId: row.node_id,
        version: Number(row.version),
        problem: `chunk ${row.idx} is declared ${row.declared} bytes but holds ${row.stored}`,
      })),
      ...totals.rows.map((row) => ({
        nodeId: row.node_id,
        version: Number(row.version),
        problem: `its chunks add up to ${row.total} bytes, not ${row.size}`,
      })),
    ]
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

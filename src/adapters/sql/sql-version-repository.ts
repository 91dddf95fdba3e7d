import type { Kysely, Selectable } from 'kysely'
import type { ChunkHash } from '../../domain/hashes.js'
import type { ChunkRef, Millis, VersionRecord } from '../../domain/model.js'
import type {
  ChunkCopy,
  HistoryDue,
  ReadPlan,
  VersionRepository,
} from '../../ports/metadata/version-repository.js'
import { atomically } from './atomic.js'
import { batches, ROWS_PER_INSERT, VALUES_PER_STATEMENT } from './batches.js'
import type { Database, VersionChunksTable, VersionsTable } from './schema.js'

export class SqlVersionRepository implements VersionRepository {
  constructor(private readonly db: Kysely<Database>) {}

  async insert(version: VersionRecord, chunks: readonly ChunkRef[]): Promise<void> {
    await atomically(this.db, async (db) => {
      await db
        .insertInto('versions')
        .values({
          id: version.id,
          node_id: version.nodeId,
          version: version.version,
          size: version.size,
          content_hash: version.contentHash,
          author_id: version.authorId,
          created_at: version.createdAt,
        })
        .execute()
      for (const batch of batches(chunks, ROWS_PER_INSERT)) {
        await db
          .insertInto('version_chunks')
          .values(
            batch.map((chunk) => ({
              version_id: version.id,
              idx: chunk.index,
              chunk_hash: chunk.hash,
              size: chunk.size,
              byte_offset: chunk.offset,
            })),
          )
          .execute()
      }
    })
  }

  async find(nodeId: string, version: number): Promise<VersionRecord | null> {
    const row = await this.db
      .selectFrom('versions')
      .selectAll()
      .where('node_id', '=', nodeId)
      .where('version', '=', version)
      .executeTakeFirst()
    return row ? toVersion(row) : null
  }

  async chunks(versionId: string, fromOffset?: number): Promise<ChunkRef[]> {
    // With an offset, the first chunk is the one whose [byte_offset, byte_offset + size)
    // contains it. A 10 GiB file has 2,560 rows of 4 MiB: small enough to read at once.
    const rows = await this.db
      .selectFrom('version_chunks')
      .selectAll()
      .where('version_id', '=', versionId)
      .$if(fromOffset !== undefined && fromOffset > 0, (qb) =>
        qb.where((eb) => eb(eb('byte_offset', '+', eb.ref('size')), '>', fromOffset!)),
      )
      .orderBy('idx', 'asc')
      .execute()
    return rows.map(toChunkRef)
  }

  async readPlan(
    nodeId: string,
    version: number,
    fromOffset: number,
    toOffset?: number,
  ): Promise<ReadPlan | null> {
    // One statement, so the version and its chunk list come from one snapshot. Left joins: a
    // version with no chunks (an empty file) is one row of nulls; a chunk whose row is gone
    // (corruption) keeps its place, with no copy.
    const rows = await this.db
      .selectFrom('versions as v')
      .leftJoin('version_chunks as vc', (join) =>
        join
          .onRef('vc.version_id', '=', 'v.id')
          .on((eb) => eb(eb('vc.byte_offset', '+', eb.ref('vc.size')), '>', fromOffset))
          // A range near the start of a file of 65,536 chunks reads a few rows, not all of them.
          .on('vc.byte_offset', '<=', toOffset ?? Number.MAX_SAFE_INTEGER),
      )
      .leftJoin('chunks as c', (join) =>
        join.onRef('c.hash', '=', 'vc.chunk_hash').on('c.state', '=', 'live'),
      )
      .selectAll('v')
      .select([
        'vc.idx',
        'vc.chunk_hash',
        'vc.size as chunk_size',
        'vc.byte_offset',
        'c.generation',
        'c.damaged_at',
      ])
      .where('v.node_id', '=', nodeId)
      .where('v.version', '=', version)
      .orderBy('vc.idx', 'asc')
      .execute()
    const first = rows[0]
    if (!first) return null
    const chunks: ChunkCopy[] = []
    for (const row of rows) {
      if (row.idx === null || row.chunk_hash === null || row.chunk_size === null || row.byte_offset === null)
        continue
      chunks.push({
        index: row.idx,
        hash: row.chunk_hash,
        size: row.chunk_size,
        offset: row.byte_offset,
        generation: row.generation,
        damaged: row.damaged_at !== null,
      })
    }
    return { version: toVersion(first), chunks }
  }

  async list(nodeId: string): Promise<VersionRecord[]> {
    const rows = await this.db
      .selectFrom('versions')
      .selectAll()
      .where('node_id', '=', nodeId)
      .orderBy('version', 'desc')
      .execute()
    return rows.map(toVersion)
  }

  async idsOf(nodeIds: readonly string[]): Promise<string[]> {
    const ids: string[] = []
    for (const batch of batches(nodeIds, VALUES_PER_STATEMENT)) {
      const rows = await this.db.selectFrom('versions').select('id').where('node_id', 'in', batch).execute()
      ids.push(...rows.map((row) => row.id))
    }
    return ids
  }

  async delete(versionIds: readonly string[]): Promise<Map<ChunkHash, number>> {
    return atomically(this.db, async (db) => {
      const dropped = new Map<ChunkHash, number>()
      for (const batch of batches(versionIds, VALUES_PER_STATEMENT)) {
        const counts = await db
          .selectFrom('version_chunks')
          .select(['chunk_hash', (eb) => eb.fn.countAll<number | string>().as('count')])
          .where('version_id', 'in', batch)
          .groupBy('chunk_hash')
          .execute()
        for (const { chunk_hash, count } of counts) {
          dropped.set(chunk_hash, (dropped.get(chunk_hash) ?? 0) + Number(count))
        }
        await db.deleteFrom('version_chunks').where('version_id', 'in', batch).execute()
        await db.deleteFrom('versions').where('id', 'in', batch).execute()
      }
      return dropped
    })
  }

  async setHistoryDue(nodeId: string, dueAt: Millis | null): Promise<void> {
    await this.db.updateTable('nodes').set({ history_due_at: dueAt }).where('id', '=', nodeId).execute()
  }

  async historyDue(now: Millis, after: HistoryDue | null, limit: number): Promise<HistoryDue[]> {
    // `is not null` repeats the partial index's condition, so that both planners take it.
    const rows = await this.db
      .selectFrom('nodes')
      .select(['id', 'history_due_at'])
      .where('history_due_at', 'is not', null)
      .where('history_due_at', '<=', now)
      .$if(after !== null, (qb) =>
        qb.where(({ eb, refTuple, tuple }) =>
          eb(refTuple('history_due_at', 'id'), '>', tuple(after!.dueAt, after!.nodeId)),
        ),
      )
      .orderBy('history_due_at')
      .orderBy('id')
      .limit(limit)
      .execute()
    return rows.map((row) => ({ nodeId: row.id, dueAt: row.history_due_at as Millis }))
  }

  async markAllHistoryDue(now: Millis): Promise<number> {
    const result = await this.db
      .updateTable('nodes')
      .set({ history_due_at: now })
      .where('id', 'in', (eb) =>
        eb
          .selectFrom('versions')
          .select('node_id')
          .groupBy('node_id')
          .having((having) => having.fn.countAll(), '>', 1),
      )
      .executeTakeFirst()
    return Number(result.numUpdatedRows)
  }
}

function toVersion(row: Selectable<VersionsTable>): VersionRecord {
  return {
    id: row.id,
    nodeId: row.node_id,
    version: row.version,
    size: row.size,
    contentHash: row.content_hash,
    authorId: row.author_id,
    createdAt: row.created_at,
  }
}

function toChunkRef(row: Selectable<VersionChunksTable>): ChunkRef {
  return { index: row.idx, hash: row.chunk_hash, size: row.size, offset: row.byte_offset }
}

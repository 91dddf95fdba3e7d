import { type Kysely, sql } from 'kysely'
import type { ChunkHash } from '../../domain/hashes.js'
import type { Millis } from '../../domain/model.js'
import type { ChunkRepository } from '../../ports/metadata-store.js'
import { atomically } from './atomic.js'
import { batches, VALUES_PER_STATEMENT } from './batches.js'
import type { Database } from './schema.js'

export class SqlChunkRepository implements ChunkRepository {
  constructor(private readonly db: Kysely<Database>) {}

  async stored(hashes: readonly ChunkHash[]): Promise<Set<ChunkHash>> {
    const found = new Set<ChunkHash>()
    for (const batch of batches(distinct(hashes), VALUES_PER_STATEMENT)) {
      const rows = await this.db.selectFrom('chunks').select('hash').where('hash', 'in', batch).execute()
      for (const row of rows) found.add(row.hash)
    }
    return found
  }

  async readableBy(userId: string, hashes: readonly ChunkHash[]): Promise<Set<ChunkHash>> {
    // Any version of any node of the user, trashed or not: the rows exist until purged.
    const found = new Set<ChunkHash>()
    for (const batch of batches(distinct(hashes), VALUES_PER_STATEMENT)) {
      const rows = await this.db
        .selectFrom('version_chunks')
        .innerJoin('versions', 'versions.id', 'version_chunks.version_id')
        .innerJoin('nodes', 'nodes.id', 'versions.node_id')
        .select('version_chunks.chunk_hash')
        .distinct()
        .where('nodes.owner_id', '=', userId)
        .where('version_chunks.chunk_hash', 'in', batch)
        .execute()
      for (const row of rows) found.add(row.chunk_hash)
    }
    return found
  }

  async insert(hash: ChunkHash, size: number, createdAt: Millis): Promise<boolean> {
    const result = await this.db
      .insertInto('chunks')
      .values({ hash, size, created_at: createdAt })
      .onConflict((oc) => oc.column('hash').doNothing())
      .executeTakeFirst()
    return Number(result.numInsertedOrUpdatedRows ?? 0) > 0
  }

  async addReferences(counts: ReadonlyMap<ChunkHash, number>): Promise<void> {
    // One UPDATE per batch: ref_count + CASE hash WHEN ... THEN ... END. The cast tells
    // PostgreSQL the type of the bound counts, which it cannot infer inside CASE.
    await atomically(this.db, async (db) => {
      for (const batch of batches([...counts], VALUES_PER_STATEMENT / 2)) {
        const delta = sql<number>`case hash ${sql.join(
          batch.map(([hash, count]) => sql`when ${hash} then cast(${count} as bigint)`),
          sql` `,
        )} else 0 end`
        await db
          .updateTable('chunks')
          .set((eb) => ({ ref_count: eb('ref_count', '+', delta) }))
          .where(
            'hash',
            'in',
            batch.map(([hash]) => hash),
          )
          .execute()
      }
    })
  }

  async find(hash: ChunkHash): Promise<{ hash: ChunkHash; size: number; refCount: number } | null> {
    const row = await this.db.selectFrom('chunks').selectAll().where('hash', '=', hash).executeTakeFirst()
    return row ? { hash: row.hash, size: row.size, refCount: row.ref_count } : null
  }
}

const distinct = <T>(items: readonly T[]): T[] => [...new Set(items)]

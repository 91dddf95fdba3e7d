import { type Kysely, type Selectable, sql } from 'kysely'
import { AppError } from '../../domain/errors.js'
import type { ChunkHash } from '../../domain/hashes.js'
import type { ChunkRecord, Millis } from '../../domain/model.js'
import type { ChunkRepository } from '../../ports/metadata-store.js'
import { atomically } from './atomic.js'
import { batches, VALUES_PER_STATEMENT } from './batches.js'
import type { SqlDialect } from './dialect.js'
import type { ChunksTable, Database } from './schema.js'

/** The advisory lock key of the chunk guard: any constant no other lock uses ("tess" in ASCII). */
const CHUNK_GUARD_KEY = sql.lit(0x74657373)

export class SqlChunkRepository implements ChunkRepository {
  constructor(
    private readonly db: Kysely<Database>,
    private readonly dialect: SqlDialect,
  ) {}

  async stored(hashes: readonly ChunkHash[]): Promise<Set<ChunkHash>> {
    const found = new Set<ChunkHash>()
    for (const batch of batches(distinct(hashes), VALUES_PER_STATEMENT)) {
      const rows = await this.db
        .selectFrom('chunks')
        .select('hash')
        .where('hash', 'in', batch)
        .where('state', '=', 'live')
        .execute()
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
    await atomically(this.db, async (db) => {
      for (const batch of batches([...counts], VALUES_PER_STATEMENT / 2)) {
        const result = await db
          .updateTable('chunks')
          .set((eb) => ({ ref_count: eb('ref_count', '+', countsCase(batch)), marked_at: null }))
          .where(
            'hash',
            'in',
            batch.map(([hash]) => hash),
          )
          .where('state', '=', 'live')
          .executeTakeFirst()
        // A row that is missing or claimed by the collector must not gain a reference: its
        // bytes are gone or going. The caller's transaction rolls back on this error.
        if (Number(result.numUpdatedRows) !== batch.length) {
          throw new AppError('CHUNKS_MISSING', 'some chunks were removed meanwhile: check the upload again')
        }
      }
    })
  }

  async dropReferences(counts: ReadonlyMap<ChunkHash, number>): Promise<void> {
    await atomically(this.db, async (db) => {
      for (const batch of batches([...counts], VALUES_PER_STATEMENT / 2)) {
        await db
          .updateTable('chunks')
          .set((eb) => ({ ref_count: eb('ref_count', '-', countsCase(batch)) }))
          .where(
            'hash',
            'in',
            batch.map(([hash]) => hash),
          )
          .execute()
      }
    })
  }

  async guard(mode: 'use' | 'collect'): Promise<void> {
    if (this.dialect === 'sqlite') return
    if (mode === 'use') await sql`select pg_advisory_xact_lock_shared(${CHUNK_GUARD_KEY})`.execute(this.db)
    else await sql`select pg_advisory_xact_lock(${CHUNK_GUARD_KEY})`.execute(this.db)
  }

  async find(hash: ChunkHash): Promise<ChunkRecord | null> {
    const row = await this.db.selectFrom('chunks').selectAll().where('hash', '=', hash).executeTakeFirst()
    return row ? toChunk(row) : null
  }
}

export function toChunk(
  row: Pick<Selectable<ChunksTable>, 'hash' | 'size' | 'ref_count' | 'state'>,
): ChunkRecord {
  return { hash: row.hash, size: row.size, refCount: row.ref_count, state: row.state }
}

/**
 * `CASE hash WHEN ... THEN count ... END`: one UPDATE changes each row by its own amount. The
 * cast tells PostgreSQL the type of the bound counts, which it cannot infer inside CASE.
 */
function countsCase(batch: readonly (readonly [ChunkHash, number])[]) {
  return sql<number>`case hash ${sql.join(
    batch.map(([hash, count]) => sql`when ${hash} then cast(${count} as bigint)`),
    sql` `,
  )} else 0 end`
}

const distinct = <T>(items: readonly T[]): T[] => [...new Set(items)]

import { type Kysely, type Selectable, sql } from 'kysely'
import type { BlobKey } from '../../domain/blob-key.js'
import { AppError } from '../../domain/errors.js'
import type { ChunkHash } from '../../domain/hashes.js'
import type { ChunkRecord, Millis } from '../../domain/model.js'
import type { ChunkRepository } from '../../ports/metadata/chunk-repository.js'
import { atomically } from './atomic.js'
import { batches, VALUES_PER_STATEMENT } from './batches.js'
import type { SqlDialect } from './dialect.js'
import type { ChunksTable, Database } from './schema.js'

/** The advisory lock key of the chunk guard: any constant no other lock uses ("tess" in ASCII). */
const CHUNK_GUARD_KEY = sql.lit(0x74657373)
/** How long the collector tries for the exclusive guard before it waits in line (see guard). */
const COLLECT_TRY_FOR_MS = 10_000

/** What one transaction does to a chunk's reference count. */
interface ReferenceChange {
  delta: number
  /** Whether any reference is added: then the chunk must be live. */
  added: boolean
}

export class SqlChunkRepository implements ChunkRepository {
  /** Reference changes of this transaction not applied yet (see flushReferences). */
  readonly #changes = new Map<ChunkHash, ReferenceChange>()

  constructor(
    private readonly db: Kysely<Database>,
    private readonly dialect: SqlDialect,
  ) {}

  async sound(hashes: readonly ChunkHash[]): Promise<Map<ChunkHash, number>> {
    const found = new Map<ChunkHash, number>()
    for (const batch of batches(distinct(hashes), VALUES_PER_STATEMENT)) {
      const rows = await this.db
        .selectFrom('chunks')
        .select(['hash', 'size'])
        .where('hash', 'in', batch)
        .where('state', '=', 'live')
        .where('damaged_at', 'is', null)
        .execute()
      for (const row of rows) found.set(row.hash, row.size)
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

  async insert(chunk: BlobKey & { size: number }, createdAt: Millis): Promise<boolean> {
    const { hash, size, generation } = chunk
    const result = await this.db
      .insertInto('chunks')
      // No version names a copy just stored: its session's end may let the collector take it
      // without a grace period (SqlUploadRepository.delete).
      .values({ hash, size, generation, created_at: createdAt, never_referenced: 1 })
      .onConflict((oc) => oc.column('hash').doNothing())
      .executeTakeFirst()
    return Number(result.numInsertedOrUpdatedRows ?? 0) > 0
  }

  async replaceDamaged(hash: ChunkHash, from: string, to: string, now: Millis): Promise<boolean> {
    const result = await this.db
      .updateTable('chunks')
      // The new copy was hashed as it arrived: it counts as verified now.
      .set({ generation: to, damaged_at: null, verified_at: now })
      .where('hash', '=', hash)
      .where('generation', '=', from)
      .where('state', '=', 'live')
      .where('damaged_at', 'is not', null)
      .executeTakeFirst()
    return Number(result.numUpdatedRows) > 0
  }

  async markDamaged(key: BlobKey, now: Millis): Promise<boolean> {
    const result = await this.db
      .updateTable('chunks')
      .set({ damaged_at: now })
      .where('hash', '=', key.hash)
      .where('generation', '=', key.generation)
      .where('state', '=', 'live')
      .where('damaged_at', 'is', null)
      .executeTakeFirst()
    return Number(result.numUpdatedRows) > 0
  }

  async addReferences(counts: ReadonlyMap<ChunkHash, number>): Promise<void> {
    await this.#gather(counts, 1)
  }

  async dropReferences(counts: ReadonlyMap<ChunkHash, number>): Promise<void> {
    await this.#gather(counts, -1)
  }

  /**
   * In a transaction, reference changes wait for `flushReferences` at its end; outside one
   * (this repository then serves concurrent callers) each call is applied on its own at once.
   */
  async #gather(counts: ReadonlyMap<ChunkHash, number>, sign: 1 | -1): Promise<void> {
    const changes = this.db.isTransaction ? this.#changes : new Map<ChunkHash, ReferenceChange>()
    for (const [hash, count] of counts) {
      const change = changes.get(hash) ?? { delta: 0, added: false }
      change.delta += sign * count
      change.added ||= sign > 0
      changes.set(hash, change)
    }
    if (!this.db.isTransaction) await this.#apply(changes)
  }

  /**
   * Applies the reference changes gathered in this transaction, in one pass over the rows in
   * hash order: every transaction then locks chunk rows in the same order, so two completes
   * that share chunks (one adding X while its history drops Y, the other the reverse) wait for
   * each other instead of deadlocking. The metadata store calls it as its transactions end.
   */
  async flushReferences(): Promise<void> {
    const changes = new Map(this.#changes)
    this.#changes.clear()
    await this.#apply(changes)
  }

  async #apply(changes: ReadonlyMap<ChunkHash, ReferenceChange>): Promise<void> {
    if (changes.size === 0) return
    const sorted = [...changes].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    await atomically(this.db, async (db) => {
      for (const batch of batches(sorted, VALUES_PER_STATEMENT / 2)) {
        const hashes = batch.map(([hash]) => hash)
        const rows = await db
          .selectFrom('chunks')
          .select(['hash', 'state'])
          .where('hash', 'in', hashes)
          .orderBy('hash')
          .$if(this.dialect === 'postgres', (qb) => qb.forUpdate())
          .execute()
        const live = new Set(rows.filter((row) => row.state === 'live').map((row) => row.hash))
        // A row that is missing or claimed by the collector must not gain a reference: its
        // bytes are gone or going. The caller's transaction rolls back on this error.
        if (batch.some(([hash, change]) => change.added && !live.has(hash))) {
          throw new AppError('CHUNKS_MISSING', 'some chunks were removed meanwhile: check the upload again')
        }
        const added = batch.filter(([, change]) => change.added).map(([hash]) => hash)
        await db
          .updateTable('chunks')
          .set((eb) => ({
            ref_count: eb('ref_count', '+', deltasCase(batch)),
            // A reference clears the collector's mark: garbage again later waits a full grace again.
            marked_at:
              added.length === 0
                ? eb.ref('marked_at')
                : sql<number | null>`case when hash in (${sql.join(added)}) then null else marked_at end`,
            // Named by a version once: a download may be reading it, so it waits a full grace always.
            never_referenced:
              added.length === 0
                ? eb.ref('never_referenced')
                : sql<number>`case when hash in (${sql.join(added)}) then 0 else never_referenced end`,
          }))
          .where('hash', 'in', hashes)
          .execute()
      }
    })
  }

  async guard(mode: 'use' | 'collect'): Promise<void> {
    if (this.dialect === 'sqlite') return
    if (mode === 'use') {
      await sql`select pg_advisory_xact_lock_shared(${CHUNK_GUARD_KEY})`.execute(this.db)
      return
    }
    // PostgreSQL grants a lock in the order it was asked for: a collector waiting in line for the
    // exclusive form would make every upload that asks for the shared form after it wait behind
    // it, a convoy behind the longest upload transaction. So the collector only tries, and waits
    // between tries, outside the line; should uploads never leave a gap, it queues after a while.
    const queueAt = Date.now() + COLLECT_TRY_FOR_MS
    for (let pause = 2; Date.now() < queueAt; pause = Math.min(pause * 2, 100)) {
      const { rows } = await sql<{ locked: boolean }>`
        select pg_try_advisory_xact_lock(${CHUNK_GUARD_KEY}) as locked`.execute(this.db)
      if (rows[0]?.locked) return
      await new Promise((resolve) => setTimeout(resolve, pause))
    }
    await sql`select pg_advisory_xact_lock(${CHUNK_GUARD_KEY})`.execute(this.db)
  }

  async find(hash: ChunkHash): Promise<ChunkRecord | null> {
    const row = await this.db.selectFrom('chunks').selectAll().where('hash', '=', hash).executeTakeFirst()
    return row ? toChunk(row) : null
  }
}

/** The columns a ChunkRecord is made of. */
export const CHUNK_COLUMNS = ['hash', 'size', 'ref_count', 'state', 'generation', 'damaged_at'] as const

export function toChunk(row: Pick<Selectable<ChunksTable>, (typeof CHUNK_COLUMNS)[number]>): ChunkRecord {
  return {
    hash: row.hash,
    size: row.size,
    refCount: row.ref_count,
    state: row.state,
    generation: row.generation,
    damaged: row.damaged_at !== null,
  }
}

/**
 * `CASE hash WHEN ... THEN delta ... END`: one UPDATE changes each row by its own amount. The
 * cast tells PostgreSQL the type of the bound deltas, which it cannot infer inside CASE.
 */
function deltasCase(batch: readonly (readonly [ChunkHash, ReferenceChange])[]) {
  return sql<number>`case hash ${sql.join(
    batch.map(([hash, { delta }]) => sql`when ${hash} then cast(${delta} as bigint)`),
    sql` `,
  )} else 0 end`
}

const distinct = <T>(items: readonly T[]): T[] => [...new Set(items)]

import { type Kysely, type Selectable, type SelectQueryBuilder, sql } from 'kysely'
import type { ChunkHash } from '../../domain/hashes.js'
import type { Millis, UploadChunkRecord, UploadChunkState, UploadRecord } from '../../domain/model.js'
import type { UploadCompletion, UploadRepository } from '../../ports/metadata/upload-repository.js'
import { atomically } from './atomic.js'
import { batches, ROWS_PER_INSERT, VALUES_PER_STATEMENT } from './batches.js'
import type { SqlDialect } from './dialect.js'
import type { Database, UploadChunksTable, UploadsTable } from './schema.js'

/**
 * A collector mark this old is past every grace period: the chunk goes at the next run, if
 * nothing names it by then (see `#releaseChunks`).
 */
const COLLECTABLE_AT_ONCE = 0

/** A subquery of the chunk hashes of some sessions. */
type ChunkHashes = SelectQueryBuilder<Database, 'upload_chunks' | 'uploads', { chunk_hash: string }>

/** upload_chunks rows go with their upload through ON DELETE CASCADE (SQLite: foreign_keys=ON). */
export class SqlUploadRepository implements UploadRepository {
  constructor(
    private readonly db: Kysely<Database>,
    private readonly dialect: SqlDialect,
  ) {}

  async insert(upload: UploadRecord, chunks: readonly UploadChunkRecord[]): Promise<void> {
    await atomically(this.db, async (db) => {
      await db
        .insertInto('uploads')
        .values({
          id: upload.id,
          user_id: upload.userId,
          folder_id: upload.folderId,
          filename: upload.filename,
          size: upload.size,
          chunk_size: upload.chunkSize,
          total_chunks: upload.totalChunks,
          base_version: upload.baseVersion,
          proof_nonce: upload.proofNonce,
          created_at: upload.createdAt,
          expires_at: upload.expiresAt,
          owner_id: upload.reservation?.ownerId ?? null,
          reserved_bytes: upload.reservation?.bytes ?? 0,
          credit_file_id: upload.reservation?.creditFileId ?? null,
        })
        .execute()
      await new SqlUploadRepository(db, this.dialect).addChunks(upload.id, chunks)
    })
  }

  async addChunks(uploadId: string, chunks: readonly UploadChunkRecord[]): Promise<void> {
    await atomically(this.db, async (db) => {
      for (const batch of batches(chunks, ROWS_PER_INSERT)) {
        await db
          .insertInto('upload_chunks')
          .values(
            batch.map((chunk) => ({
              upload_id: uploadId,
              idx: chunk.index,
              chunk_hash: chunk.hash,
              size: chunk.size,
              byte_offset: chunk.offset,
              state: chunk.state,
            })),
          )
          .execute()
      }
    })
  }

  async find(userId: string, id: string, now: Millis): Promise<UploadRecord | null> {
    const row = await this.db
      .selectFrom('uploads')
      .selectAll()
      .where('id', '=', id)
      .where('user_id', '=', userId)
      .where('expires_at', '>', now)
      .where('completed_at', 'is', null)
      .executeTakeFirst()
    return row ? toUpload(row) : null
  }

  async setExpiry(uploadId: string, expiresAt: Millis): Promise<boolean> {
    const result = await this.db
      .updateTable('uploads')
      .set({ expires_at: expiresAt })
      .where('id', '=', uploadId)
      .where('completed_at', 'is', null)
      .executeTakeFirst()
    return Number(result.numUpdatedRows) > 0
  }

  async completion(
    userId: string,
    id: string,
    now: Millis,
  ): Promise<(UploadCompletion & { size: number }) | null> {
    const row = await this.db
      .selectFrom('uploads')
      .select(['file_id', 'file_version', 'content_hash', 'conflict', 'size'])
      .where('id', '=', id)
      .where('user_id', '=', userId)
      .where('expires_at', '>', now)
      .where('completed_at', 'is not', null)
      .executeTakeFirst()
    if (!row?.file_id || row.file_version === null || row.content_hash === null) return null
    return {
      fileId: row.file_id,
      version: row.file_version,
      contentHash: row.content_hash,
      conflict: row.conflict === 1,
      size: row.size,
    }
  }

  async markCompleted(
    id: string,
    completion: UploadCompletion,
    now: Millis,
    rememberUntil: Millis = now,
  ): Promise<boolean> {
    return atomically(this.db, async (db) => {
      const result = await db
        .updateTable('uploads')
        .set((eb) => ({
          completed_at: now,
          file_id: completion.fileId,
          file_version: completion.version,
          content_hash: completion.contentHash,
          conflict: completion.conflict ? 1 : 0,
          expires_at: eb
            .case()
            .when('expires_at', '<', rememberUntil)
            .then(rememberUntil)
            .else(eb.ref('expires_at'))
            .end(),
        }))
        .where('id', '=', id)
        .where('completed_at', 'is', null)
        .where('expires_at', '>', now)
        .executeTakeFirst()
      if (Number(result.numUpdatedRows) === 0) return false
      await db.deleteFrom('upload_chunks').where('upload_id', '=', id).execute()
      return true
    })
  }

  async chunks(uploadId: string): Promise<UploadChunkRecord[]> {
    const rows = await this.db
      .selectFrom('upload_chunks')
      .selectAll()
      .where('upload_id', '=', uploadId)
      .orderBy('idx', 'asc')
      .execute()
    return rows.map(toUploadChunk)
  }

  async chunk(uploadId: string, index: number): Promise<UploadChunkRecord | null> {
    const row = await this.db
      .selectFrom('upload_chunks')
      .selectAll()
      .where('upload_id', '=', uploadId)
      .where('idx', '=', index)
      .executeTakeFirst()
    return row ? toUploadChunk(row) : null
  }

  async setStateByHash(
    uploadId: string,
    hashes: readonly ChunkHash[],
    state: UploadChunkState,
  ): Promise<void> {
    await atomically(this.db, async (db) => {
      for (const batch of batches([...new Set(hashes)], VALUES_PER_STATEMENT)) {
        await db
          .updateTable('upload_chunks')
          .set({ state })
          .where('upload_id', '=', uploadId)
          .where('chunk_hash', 'in', batch)
          .execute()
      }
    })
  }

  async lockAccounts(userIds: readonly string[]): Promise<void> {
    // On SQLite writers are serialised already; the UPDATE costs next to nothing there.
    for (const id of [...new Set(userIds)].sort()) {
      await this.db
        .updateTable('users')
        .set((eb) => ({ used_bytes: eb.ref('used_bytes') }))
        .where('id', '=', id)
        .execute()
    }
  }

  async reservedBytes(ownerId: string, now: Millis): Promise<number> {
    // A session's credit is its file's size now, at most what the session reserved; nothing once
    // the file is purged (a trashed file still counts in usedBytes, so it still covers).
    // A session holds while its target folder exists: in the trash it may still complete after a
    // restore (as trashed files still count in usedBytes); once purged, never.
    const row = await this.db
      .selectFrom('uploads')
      .innerJoin('nodes as target', 'target.id', 'uploads.folder_id')
      .leftJoin('nodes', (join) =>
        join
          .onRef('nodes.id', '=', 'uploads.credit_file_id')
          .onRef('nodes.owner_id', '=', 'uploads.owner_id')
          .on('nodes.kind', '=', 'file'),
      )
      .select(
        sql<number | string>`coalesce(sum(uploads.reserved_bytes - case
          when nodes.size is null then 0
          when nodes.size < uploads.reserved_bytes then nodes.size
          else uploads.reserved_bytes end), 0)`.as('bytes'),
      )
      .where('uploads.owner_id', '=', ownerId)
      .where('uploads.completed_at', 'is', null)
      .where('uploads.expires_at', '>', now)
      .executeTakeFirstOrThrow()
    // PostgreSQL's sum of a bigint is a numeric, which its driver hands over as a string.
    return Number(row.bytes)
  }

  async openInto(userId: string, ownerId: string, now: Millis): Promise<{ id: string; folderId: string }[]> {
    return this.db
      .selectFrom('uploads')
      .select(['id', 'folder_id as folderId'])
      .where('user_id', '=', userId)
      .where('owner_id', '=', ownerId)
      .where('completed_at', 'is', null)
      .where('expires_at', '>', now)
      .execute()
  }

  async creditTaken(ownerId: string, fileId: string, now: Millis): Promise<boolean> {
    const row = await this.db
      .selectFrom('uploads')
      .select('id')
      .where('owner_id', '=', ownerId)
      .where('credit_file_id', '=', fileId)
      .where('completed_at', 'is', null)
      .where('expires_at', '>', now)
      .limit(1)
      .executeTakeFirst()
    return row !== undefined
  }

  async openSessions(userId: string, now: Millis): Promise<{ count: number; firstExpiry: Millis | null }> {
    const row = await this.db
      .selectFrom('uploads')
      .select((eb) => [eb.fn.countAll<number | string>().as('count'), eb.fn.min('expires_at').as('first')])
      .where('user_id', '=', userId)
      .where('completed_at', 'is', null)
      .where('expires_at', '>', now)
      .executeTakeFirstOrThrow()
    return { count: Number(row.count), firstExpiry: row.first === null ? null : Number(row.first) }
  }

  async proofDigests(uploadId: string, hashes: readonly ChunkHash[]): Promise<Map<ChunkHash, string>> {
    const digests = new Map<ChunkHash, string>()
    for (const batch of batches([...new Set(hashes)], VALUES_PER_STATEMENT)) {
      const rows = await this.db
        .selectFrom('upload_chunks')
        .select(['chunk_hash', 'proof_digest'])
        .distinct()
        .where('upload_id', '=', uploadId)
        .where('chunk_hash', 'in', batch)
        .where('proof_digest', 'is not', null)
        .execute()
      for (const row of rows) if (row.proof_digest) digests.set(row.chunk_hash as ChunkHash, row.proof_digest)
    }
    return digests
  }

  async rememberProof(uploadId: string, hash: ChunkHash, digest: string): Promise<void> {
    await this.db
      .updateTable('upload_chunks')
      .set({ proof_digest: digest })
      .where('upload_id', '=', uploadId)
      .where('chunk_hash', '=', hash)
      .execute()
  }

  async delete(id: string): Promise<boolean> {
    await this.#releaseChunks(
      this.db
        .selectFrom('upload_chunks')
        .innerJoin('uploads', 'uploads.id', 'upload_chunks.upload_id')
        .select('upload_chunks.chunk_hash')
        .where('uploads.id', '=', id)
        .where('uploads.completed_at', 'is', null),
    )
    const result = await this.db
      .deleteFrom('uploads')
      .where('id', '=', id)
      .where('completed_at', 'is', null)
      .executeTakeFirst()
    return Number(result.numDeletedRows) > 0
  }

  async deleteExpired(now: Millis): Promise<number> {
    await this.#releaseChunks(
      this.db
        .selectFrom('upload_chunks')
        .innerJoin('uploads', 'uploads.id', 'upload_chunks.upload_id')
        .select('upload_chunks.chunk_hash')
        .where('uploads.expires_at', '<=', now),
    )
    const result = await this.db.deleteFrom('uploads').where('expires_at', '<=', now).executeTakeFirst()
    return Number(result.numDeletedRows)
  }

  /**
   * Makes the chunks of sessions about to be deleted collectable at the collector's next run,
   * without a grace period from now, when no version has ever named them: the grace is for
   * readers that learnt of a chunk from a version before it became garbage, and such a chunk
   * has had none. A session that still names one (another upload of the same bytes) keeps it
   * as before: the claim skips chunks any session names, under the chunk guard. Runs before the
   * sessions are deleted, while their chunk lists can still be read; should the deletion not
   * follow, the marks wait harmlessly behind the sessions that still protect the chunks. The
   * rows are locked in hash order, as every lock on chunk rows is taken.
   */
  async #releaseChunks(hashesOf: ChunkHashes): Promise<void> {
    const releasable = this.db
      .selectFrom('chunks')
      .select('hash')
      .where('hash', 'in', hashesOf)
      .where('ref_count', '=', 0)
      .where('never_referenced', '=', 1)
      .where('state', '=', 'live')
      .orderBy('hash')
      .$if(this.dialect === 'postgres', (qb) => qb.forUpdate())
    await this.db
      .updateTable('chunks')
      .set({ marked_at: COLLECTABLE_AT_ONCE })
      .where('hash', 'in', releasable)
      .where('ref_count', '=', 0)
      .where('never_referenced', '=', 1)
      .where('state', '=', 'live')
      .execute()
  }
}

function toUpload(row: Selectable<UploadsTable>): UploadRecord {
  return {
    id: row.id,
    userId: row.user_id,
    folderId: row.folder_id,
    filename: row.filename,
    size: row.size,
    chunkSize: row.chunk_size,
    totalChunks: row.total_chunks,
    baseVersion: row.base_version,
    proofNonce: row.proof_nonce,
    createdAt: row.created_at,
    expiresAt: row.expires_at,
  }
}

function toUploadChunk(row: Selectable<UploadChunksTable>): UploadChunkRecord {
  return { index: row.idx, hash: row.chunk_hash, size: row.size, offset: row.byte_offset, state: row.state }
}

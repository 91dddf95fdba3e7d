import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import Database from 'better-sqlite3'
import pg from 'pg'
import { DiskBlobStore } from '../../src/adapters/disk/disk-blob-store.js'
import { LocalEventBus } from '../../src/adapters/local-bus/local-event-bus.js'
import { openPostgresMetadataStore } from '../../src/adapters/postgres/postgres-metadata-store.js'
import { openSqliteMetadataStore } from '../../src/adapters/sqlite/sqlite-metadata-store.js'
import { buildServices } from '../../src/composition.js'
import type { User } from '../../src/domain/model.js'
import type { RetentionPolicy } from '../../src/domain/retention.js'
import type { MetadataStore } from '../../src/ports/metadata-store.js'
import type { AppServices } from '../../src/services/app-services.js'
import { createTestDatabase, type DatabaseKind } from '../helpers/databases.js'
import { MODEL_CONFIG } from './model.js'

/**
 * The system under test: the services over a real metadata store (SQLite file or PostgreSQL
 * database) and a real disk blob store in a temporary directory, with a clock the test moves.
 */
export interface System {
  readonly kind: DatabaseKind
  /** The virtual clock: every service reads it. */
  now: number
  meta: MetadataStore
  blobs: DiskBlobStore
  services: AppServices
  readonly users: readonly User[]
  /**
   * The collector's marks (`chunks.marked_at`) of the live rows, read from the database
   * directly (no port exposes them): after a concurrent batch, whether the collector's mark
   * came before or after an upload is read back rather than guessed.
   */
  marks(): Promise<Map<string, number | null>>
  /** Closes the metadata store and opens it again on the same data, with fresh services. */
  restart(): Promise<void>
  /** Closes everything and deletes the data. */
  dispose(): Promise<void>
}

export async function openSystem(
  kind: DatabaseKind,
  start: number,
  retention: RetentionPolicy,
  userCount: number,
): Promise<System> {
  const directory = await mkdtemp(path.join(tmpdir(), 'tessera-model-'))
  const blobRoot = path.join(directory, 'blobs')
  const database = kind === 'postgres' ? await createTestDatabase() : null
  const openMeta = (): Promise<MetadataStore> =>
    database
      ? openPostgresMetadataStore({ url: database.url, poolSize: 4 })
      : openSqliteMetadataStore({ file: path.join(directory, 'tessera.db') })
  const openBlobs = async (): Promise<DiskBlobStore> => {
    const blobs = new DiskBlobStore({ root: blobRoot })
    await blobs.init()
    return blobs
  }

  const system = {
    kind,
    now: start,
    users: [] as User[],
  } as unknown as System & { users: User[] }
  const clock = () => system.now
  const wire = (meta: MetadataStore, blobs: DiskBlobStore) => {
    system.meta = meta
    system.blobs = blobs
    const bus = new LocalEventBus({ nodeId: 'storage-model' })
    system.services = buildServices({ meta, blobs, bus }, clock, { ...MODEL_CONFIG, versions: retention })
  }

  let meta: MetadataStore | null = null
  try {
    meta = await openMeta()
    wire(meta, await openBlobs())
    for (let u = 0; u < userCount; u++) {
      const { user } = await system.services.auth.register({
        email: `user${u}@example.com`,
        password: 'model test password',
      })
      system.users.push(user)
    }
  } catch (error) {
    await meta?.close()
    await database?.drop()
    await rm(directory, { recursive: true, force: true })
    throw error
  }

  const MARKS = "select hash, marked_at from chunks where state = 'live'"
  type MarkRow = { hash: string; marked_at: number | string | null }
  const toMarks = (rows: MarkRow[]) =>
    new Map(rows.map((row) => [row.hash, row.marked_at === null ? null : Number(row.marked_at)]))
  let sqlite: Database.Database | null = null
  const pool = database ? new pg.Pool({ connectionString: database.url, max: 1 }) : null
  // The database is dropped `with (force)` at the end, which may cut a connection still closing.
  pool?.on('error', () => {})
  system.marks = async () => {
    if (pool) return toMarks((await pool.query<MarkRow>(MARKS)).rows)
    sqlite ??= new Database(path.join(directory, 'tessera.db'), { readonly: true })
    return toMarks(sqlite.prepare(MARKS).all() as MarkRow[])
  }

  system.restart = async () => {
    await system.meta.close()
    // Every build of the services has its own hash threads: the dropped ones' must end.
    await system.services.hashers.close()
    wire(await openMeta(), await openBlobs())
  }
  system.dispose = async () => {
    try {
      sqlite?.close()
      await pool?.end()
      await system.meta.close()
      await system.services.hashers.close()
    } finally {
      await database?.drop()
      await rm(directory, { recursive: true, force: true })
    }
  }
  return system
}

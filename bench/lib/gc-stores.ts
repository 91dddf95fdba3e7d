// The stores of bench/gc.ts, built by bulk SQL: live chunk rows with no bytes (the collector
// never touches a referenced chunk), and garbage rows each with a real file in a disk blob store.
import { createHash, randomBytes } from 'node:crypto'
import { mkdirSync, writeFileSync } from 'node:fs'
import path from 'node:path'
import BetterSqlite3 from 'better-sqlite3'
import pg from 'pg'
import { DiskBlobStore } from '../../src/adapters/disk/disk-blob-store.js'
import { openPostgresMetadataStore } from '../../src/adapters/postgres/postgres-metadata-store.js'
import { openSqliteMetadataStore } from '../../src/adapters/sqlite/sqlite-metadata-store.js'
import { type BlobKey, blobName, newGeneration } from '../../src/domain/blob-key.js'
import type { MetadataStore } from '../../src/ports/metadata-store.js'
import { createBenchDatabase } from './postgres.js'
import { onCleanup } from './processes.js'
import { PG_ADMIN_URL } from './settings.js'

/** The size of each garbage chunk (a real file). */
export const GARBAGE_BYTES = 1024
/** The size each live row claims (it has no bytes). */
const LIVE_CHUNK_SIZE = 4 * 1024 * 1024

/** A garbage chunk: its row, and the copy (hash and generation) the row names. */
export interface Garbage extends BlobKey {
  size: number
}

/** One metadata store plus the bulk-loading side door the benchmark needs. */
export interface BenchStore {
  meta: MetadataStore
  blobs: DiskBlobStore
  insertLive(rows: number): Promise<void>
  insertGarbage(garbage: readonly Garbage[]): Promise<void>
  /** What the database would have done on its own by now (PostgreSQL: autovacuum, analyze). */
  settle(): Promise<void>
  countRows(): Promise<number>
  /** `select count(*) ... where state = 'live'`: reads every row (no index has the column). */
  scanRows(): Promise<number>
  close(): Promise<void>
}

export async function openSqliteStore(dir: string): Promise<BenchStore> {
  const file = path.join(dir, 'tessera.db')
  const meta = await openSqliteMetadataStore({ file })
  // A second connection for the bulk load (the store's own is not exposed); never used while
  // the store is running a query.
  const bulk = new BetterSqlite3(file)
  bulk.pragma('journal_mode = WAL')
  bulk.pragma('synchronous = OFF')
  bulk.pragma('cache_size = -262144')
  const insert = bulk.prepare(
    `insert into chunks (hash, size, ref_count, created_at, state, marked_at, verified_at, generation)
     values (?, ?, ?, ?, 'live', null, 0, ?)`,
  )
  const createdAt = Date.now() - 86_400_000
  // Live rows name no copy on disk (the collector never reads them): the legacy generation ''.
  const insertMany = bulk.transaction((rows: readonly (readonly [string, number, number, string?])[]) => {
    for (const [hash, size, refCount, generation = ''] of rows)
      insert.run(hash, size, refCount, createdAt, generation)
  })
  const blobs = new DiskBlobStore({ root: path.join(dir, 'chunks') })
  await blobs.init()
  return {
    meta,
    blobs,
    async insertLive(rows) {
      const batch = 50_000
      for (let done = 0; done < rows; done += batch) {
        const n = Math.min(batch, rows - done)
        const bytes = randomBytes(32 * n)
        const slice: [string, number, number][] = []
        for (let i = 0; i < n; i++)
          slice.push([bytes.toString('hex', 32 * i, 32 * i + 32), LIVE_CHUNK_SIZE, 1])
        insertMany(slice)
      }
    },
    async insertGarbage(garbage) {
      insertMany(garbage.map((g) => [g.hash, g.size, 0, g.generation] as const))
    },
    async settle() {
      bulk.pragma('wal_checkpoint(TRUNCATE)')
    },
    async countRows() {
      return (bulk.prepare('select count(*) as n from chunks').get() as { n: number }).n
    },
    async scanRows() {
      return (bulk.prepare(`select count(*) as n from chunks where state = 'live'`).get() as { n: number }).n
    },
    async close() {
      await meta.close()
      bulk.close()
    },
  }
}

export async function openPostgresStore(dir: string): Promise<BenchStore> {
  const database = await createBenchDatabase(PG_ADMIN_URL)
  onCleanup(() => database.drop())
  const meta = await openPostgresMetadataStore({ url: database.url })
  const bulk = new pg.Client({ connectionString: database.url })
  bulk.on('error', () => {})
  await bulk.connect()
  const blobs = new DiskBlobStore({ root: path.join(dir, 'chunks') })
  await blobs.init()
  const createdAt = Date.now() - 86_400_000
  let seed = 0
  return {
    meta,
    blobs,
    async insertLive(rows) {
      // Generated on the server: distinct hex SHA-256s of a per-call prefix and a counter.
      const prefix = `${randomBytes(8).toString('hex')}-${seed++}-`
      await bulk.query(
        `insert into chunks (hash, size, ref_count, created_at, state, marked_at, verified_at)
         select encode(sha256(convert_to($1 || i, 'UTF8')), 'hex'), $2, 1, $3, 'live', null, 0
         from generate_series(1, $4::int) as i`,
        [prefix, LIVE_CHUNK_SIZE, createdAt, rows],
      )
    },
    async insertGarbage(garbage) {
      await bulk.query(
        `insert into chunks (hash, size, ref_count, created_at, state, marked_at, verified_at, generation)
         select hash, size, 0, $3, 'live', null, 0, generation
         from unnest($1::text[], $2::int[], $4::text[]) as g(hash, size, generation)`,
        [garbage.map((g) => g.hash), garbage.map((g) => g.size), createdAt, garbage.map((g) => g.generation)],
      )
    },
    async settle() {
      // After a bulk load autovacuum would have analyzed the table; and between collections
      // it keeps the dead rows of the previous one in check. Done by hand, outside the timing.
      await bulk.query('vacuum analyze chunks')
    },
    async countRows() {
      const { rows } = await bulk.query<{ n: string }>('select count(*) as n from chunks')
      return Number(rows[0]!.n)
    },
    async scanRows() {
      const { rows } = await bulk.query<{ n: string }>(
        `select count(*) as n from chunks where state = 'live'`,
      )
      return Number(rows[0]!.n)
    },
    async close() {
      await meta.close()
      await bulk.end()
      await database.drop()
    },
  }
}

/** Where the disk blob store keeps a copy: ab/cd/<hash>.<generation>. */
export const copyPath = (blobs: DiskBlobStore, copy: BlobKey): string =>
  path.join(blobs.root, copy.hash.slice(0, 2), copy.hash.slice(2, 4), blobName(copy))

/** Writes `n` garbage chunks' bytes as real files in the blob store's layout, each a fresh generation. */
export function writeGarbageFiles(blobs: DiskBlobStore, n: number): Garbage[] {
  const garbage: Garbage[] = []
  const content = randomBytes(GARBAGE_BYTES * n)
  for (let i = 0; i < n; i++) {
    const bytes = content.subarray(GARBAGE_BYTES * i, GARBAGE_BYTES * (i + 1))
    const copy = { hash: createHash('sha256').update(bytes).digest('hex'), generation: newGeneration() }
    const file = copyPath(blobs, copy)
    mkdirSync(path.dirname(file), { recursive: true })
    writeFileSync(file, bytes)
    garbage.push({ ...copy, size: bytes.length })
  }
  return garbage
}

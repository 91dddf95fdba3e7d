// `npm run bench:gc` (`npx tsx bench/gc.ts`): the garbage collector's cost must follow the
// garbage, not the size of the store. A benchmark, not a test: a missed goal prints MISS and
// never fails the process (a store that cannot be built or collected at all exits 1).
//
// Stores are built by bulk SQL: live chunk rows (ref_count > 0, no bytes: the collector never
// touches a referenced chunk) and garbage rows (ref_count = 0) WITH a real 1 KiB file each in
// the disk blob store (its copy, under the generation the row names), so the sweep really
// deletes files. Then a full collection, as the
// server's upkeep runs it: a first run marks, the clock moves past the grace period, a second
// run sweeps (claim, delete the bytes, delete the rows). Cases:
//   (a) ROWS rows, 1% garbage       (b) ROWS/10 rows, the same garbage count as (a)
//   (c) ROWS rows, 0.1% garbage     (d) 3 x ROWS rows, the same garbage count as (a)
// (d)/(a) should be ~1 (the store is 3x larger, the garbage the same) and (a)/(c) ~10.
// (a)/(b) is shown too, but (b) is not a fair "same work" reference: its garbage is 10% of the
// rows, so deleting it dirties every B-tree page of the chunk indexes a few times over, while in
// (a) and (d) nearly every garbage row sits on a page of its own. The per-row cost is bounded
// (a few pages per index) and reached once garbage is sparse, which (d)/(a) shows.
// `select count(*) from chunks` on the same store is printed as what one scan of it costs.
//
//   BENCH_QUICK=1       smoke run: 100k rows, one repetition
//   BENCH_GC_ROWS=N     rows of the large store (default 1,000,000; 100,000 with BENCH_QUICK=1)
//   BENCH_GC_REPEAT=N   collections per case, the median is reported (default 3; 1 quick)
//   BENCH_PG=0          SQLite only; otherwise PostgreSQL too when it answers
//   BENCH_PG_URL=...    PostgreSQL admin URL (default postgres://postgres@127.0.0.1:5432/postgres)
//   BENCH_KEEP_TMP=1    keep the temp directory
import { createHash, randomBytes } from 'node:crypto'
import { existsSync, mkdirSync, writeFileSync } from 'node:fs'
import path from 'node:path'
import BetterSqlite3 from 'better-sqlite3'
import pg from 'pg'
import { DiskBlobStore } from '../src/adapters/disk/disk-blob-store.js'
import { openPostgresMetadataStore } from '../src/adapters/postgres/postgres-metadata-store.js'
import { openSqliteMetadataStore } from '../src/adapters/sqlite/sqlite-metadata-store.js'
import { type BlobKey, blobName, newGeneration } from '../src/domain/blob-key.js'
import type { Clock } from '../src/domain/clock.js'
import type { MetadataStore } from '../src/ports/metadata-store.js'
import { GarbageCollector } from '../src/services/garbage-collector.js'
import { type Backend, forEachBackend } from './lib/backends.js'
import { failedPhasesExitCode, say } from './lib/phases.js'
import { createBenchDatabase } from './lib/postgres.js'
import { isAborting, onCleanup, runBenchmark, runCleanups } from './lib/processes.js'
import { beginBenchmark, intEnv, PG_ADMIN_URL, QUICK } from './lib/settings.js'
import { fmt, fmtRatio, fmtSeconds, median, now, table } from './lib/timing.js'

const ROWS = intEnv('BENCH_GC_ROWS', QUICK ? 100_000 : 1_000_000)
const REPEAT = intEnv('BENCH_GC_REPEAT', QUICK ? 1 : 3)
/** The server's default GC_GRACE_SECONDS. */
const GRACE_MS = 3600_000
const GARBAGE_BYTES = 1024
const LIVE_CHUNK_SIZE = 4 * 1024 * 1024
/** (d)/(a) at most this counts as "scales with the garbage" (the store itself is 3x larger). */
const SCALE_GOAL = 1.5

interface CaseSpec {
  key: 'a' | 'b' | 'c' | 'd'
  label: string
  rows: number
  garbage: number
}

const CASES: Record<CaseSpec['key'], CaseSpec> = {
  a: { key: 'a', label: `(a) ${count(ROWS)} rows, 1% garbage`, rows: ROWS, garbage: ROWS / 100 },
  b: { key: 'b', label: `(b) ${count(ROWS / 10)} rows, same garbage`, rows: ROWS / 10, garbage: ROWS / 100 },
  c: { key: 'c', label: `(c) ${count(ROWS)} rows, 0.1% garbage`, rows: ROWS, garbage: ROWS / 1000 },
  d: { key: 'd', label: `(d) ${count(3 * ROWS)} rows, same garbage`, rows: 3 * ROWS, garbage: ROWS / 100 },
}

function count(n: number): string {
  if (n >= 1_000_000 && n % 100_000 === 0) return `${n / 1_000_000}M`
  if (n >= 1000 && n % 1000 === 0) return `${n / 1000}k`
  return String(n)
}

// ---------------------------------------------------------------------------------------
// Stores built by bulk SQL

/** A garbage chunk: its row, and the copy (hash and generation) the row names. */
interface Garbage extends BlobKey {
  size: number
}

/** One metadata store plus the bulk-loading side door the benchmark needs. */
interface BenchStore {
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

async function openSqliteStore(dir: string): Promise<BenchStore> {
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

async function openPostgresStore(dir: string): Promise<BenchStore> {
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
const copyPath = (blobs: DiskBlobStore, copy: BlobKey): string =>
  path.join(blobs.root, copy.hash.slice(0, 2), copy.hash.slice(2, 4), blobName(copy))

/** Writes `n` garbage chunks' bytes as real files in the blob store's layout, each a fresh generation. */
function writeGarbageFiles(blobs: DiskBlobStore, n: number): Garbage[] {
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

// ---------------------------------------------------------------------------------------
// One collection

interface Collection {
  markMs: number
  sweepMs: number
}

async function collect(
  store: BenchStore,
  garbage: readonly Garbage[],
  liveRows: number,
): Promise<Collection> {
  // The files really are where the store looks (the layout is the store's, not ours).
  for (const g of [garbage[0]!, garbage.at(-1)!]) {
    if (!(await store.blobs.has(g)))
      throw new Error(`garbage file ${blobName(g)} is not where the store looks`)
  }
  let time = Date.now()
  const clock: Clock = () => time
  const gc = new GarbageCollector(store.meta, store.blobs, clock, { graceMs: GRACE_MS })
  const markStart = now()
  const markReport = await gc.run()
  const markMs = now() - markStart
  if (markReport.marked !== garbage.length || markReport.swept !== 0) {
    throw new Error(
      `mark run: marked ${markReport.marked}, swept ${markReport.swept}, want ${garbage.length}, 0`,
    )
  }
  time += GRACE_MS + 1000
  const sweepStart = now()
  const sweepReport = await gc.run()
  const sweepMs = now() - sweepStart
  if (sweepReport.swept !== garbage.length || sweepReport.errors.length > 0) {
    throw new Error(
      `sweep run: swept ${sweepReport.swept} of ${garbage.length}, ${sweepReport.errors.length} errors` +
        (sweepReport.errors[0] ? ` (${sweepReport.errors[0].error})` : ''),
    )
  }
  const left = garbage.filter((g) => existsSync(copyPath(store.blobs, g))).length
  if (left > 0) throw new Error(`${left} garbage files are still there after the sweep`)
  const rows = await store.countRows()
  if (rows !== liveRows) throw new Error(`${rows} rows after the sweep, want the ${liveRows} live ones`)
  return { markMs, sweepMs }
}

interface CaseResult {
  spec: CaseSpec
  runs: Collection[]
  /** `select count(*) from chunks` on the store with its garbage, median of 3. */
  countMs: number
  /** The same count with a filter on an unindexed column: a scan of every row, median of 3. */
  scanMs: number
}

async function medianTime(rows: number, query: () => Promise<number>): Promise<number> {
  const times: number[] = []
  for (let i = 0; i < 3; i++) {
    const start = now()
    const n = await query()
    times.push(now() - start)
    if (n !== rows) throw new Error(`the count says ${n}, want ${rows}`)
  }
  return median(times)
}

/** Collects REPEAT times on a store holding `liveRows`: garbage added, settled, marked, swept. */
async function runCase(store: BenchStore, spec: CaseSpec, liveRows: number): Promise<CaseResult> {
  const runs: Collection[] = []
  let countMs = Number.NaN
  let scanMs = Number.NaN
  for (let run = 0; run < REPEAT; run++) {
    const garbage = writeGarbageFiles(store.blobs, spec.garbage)
    await store.insertGarbage(garbage)
    await store.settle()
    if (run === 0) {
      countMs = await medianTime(liveRows + garbage.length, () => store.countRows())
      scanMs = await medianTime(liveRows + garbage.length, () => store.scanRows())
    }
    const result = await collect(store, garbage, liveRows)
    runs.push(result)
    say(
      `${spec.label}: mark ${fmtMs(result.markMs)}, sweep ${fmtMs(result.sweepMs)} ` +
        `(${fmt(spec.garbage / ((result.markMs + result.sweepMs) / 1000), 0)} chunks/s)`,
    )
  }
  say(`${spec.label}: count(*) ${fmtMs(countMs)}, count(*) where state = 'live' ${fmtMs(scanMs)}`)
  return { spec, runs, countMs, scanMs }
}

const fmtMs = (ms: number): string => (ms < 1000 ? `${fmt(ms, 1)} ms` : fmtSeconds(ms))

async function timedBuild(what: string, work: () => Promise<void>): Promise<void> {
  const start = now()
  await work()
  say(`${what} in ${fmtSeconds(now() - start)}`)
}

async function benchBackend(backend: Backend, root: string): Promise<CaseResult[]> {
  const open = backend === 'SQLite' ? openSqliteStore : openPostgresStore
  const results: CaseResult[] = []
  const { a, b, c, d } = CASES

  // (a), then (c) on the same store topped up to ROWS live + 0.1% garbage, then (d) on it
  // topped up to 3 x ROWS live + the garbage of (a).
  const large = await open(mkdirFresh(root, `${backend}-large`))
  try {
    await timedBuild(`${count(a.rows - a.garbage)} live rows inserted`, () =>
      large.insertLive(a.rows - a.garbage),
    )
    results.push(await runCase(large, a, a.rows - a.garbage))
    await large.insertLive(a.garbage - c.garbage)
    results.push(await runCase(large, c, c.rows - c.garbage))
    await timedBuild(`${count(d.rows - d.garbage - (c.rows - c.garbage))} more live rows inserted`, () =>
      large.insertLive(d.rows - d.garbage - (c.rows - c.garbage)),
    )
    results.push(await runCase(large, d, d.rows - d.garbage))
  } finally {
    await large.close()
  }

  const small = await open(mkdirFresh(root, `${backend}-small`))
  try {
    await timedBuild(`${count(b.rows - b.garbage)} live rows inserted`, () =>
      small.insertLive(b.rows - b.garbage),
    )
    results.push(await runCase(small, b, b.rows - b.garbage))
  } finally {
    await small.close()
  }
  return results
}

function mkdirFresh(root: string, name: string): string {
  const dir = path.join(root, name)
  mkdirSync(dir, { recursive: true })
  return dir
}

// ---------------------------------------------------------------------------------------
// Report

const total = (c: Collection): number => c.markMs + c.sweepMs
const med = (r: CaseResult | undefined, pick: (c: Collection) => number): number =>
  r ? median(r.runs.map(pick)) : Number.NaN

function printCases(backend: Backend, results: readonly CaseResult[]): void {
  console.log(`\n${backend}${REPEAT > 1 ? ` (median of ${REPEAT} collections per case)` : ''}\n`)
  console.log(
    table(
      [
        ['case', 'rows', 'garbage', 'mark', 'sweep', 'mark + sweep', 'chunks/s', 'count(*)', 'row scan'],
        ...results.map((r) => [
          r.spec.label,
          fmt(r.spec.rows, 0),
          fmt(r.spec.garbage, 0),
          fmtMs(med(r, (c) => c.markMs)),
          fmtMs(med(r, (c) => c.sweepMs)),
          fmtMs(med(r, total)),
          fmt(r.spec.garbage / (med(r, total) / 1000), 0),
          fmtMs(r.countMs),
          fmtMs(r.scanMs),
        ]),
      ],
      ['l', 'r', 'r', 'r', 'r', 'r', 'r', 'r', 'r'],
    ),
  )
}

/** One case's figures over another's: mark + sweep, mark, sweep, count(*), row scan. */
function ratios(x: CaseResult | undefined, y: CaseResult | undefined): string[] {
  const ratio = (pick: (c: Collection) => number) => fmtRatio(med(x, pick) / med(y, pick))
  return [
    ratio(total),
    ratio((r) => r.markMs),
    ratio((r) => r.sweepMs),
    fmtRatio((x?.countMs ?? Number.NaN) / (y?.countMs ?? Number.NaN)),
    fmtRatio((x?.scanMs ?? Number.NaN) / (y?.scanMs ?? Number.NaN)),
  ]
}

/** Prints the cases and their ratios; answers whether (d)/(a) met the goal. */
function report(backend: Backend, results: readonly CaseResult[]): boolean {
  printCases(backend, results)
  const byKey = new Map(results.map((r) => [r.spec.key, r]))
  const [a, b, c, d] = [byKey.get('a'), byKey.get('b'), byKey.get('c'), byKey.get('d')]
  const da = med(d, total) / med(a, total)
  const ok = da <= SCALE_GOAL
  console.log('')
  console.log(
    table(
      [
        ['ratio', 'mark + sweep', 'mark', 'sweep', 'count(*)', 'row scan', 'expected', ''],
        [
          '(d)/(a): store 3x, same garbage',
          ...ratios(d, a),
          `~1 (goal <= ${SCALE_GOAL})`,
          Number.isFinite(da) ? (ok ? 'OK' : 'MISS') : 'n/a',
        ],
        ['(a)/(b): store 10x, same garbage', ...ratios(a, b), '>1: (b) 10% garbage, dense', ''],
        ['(a)/(c): same store, garbage 10x', ...ratios(a, c), '~10 (less: fixed costs)', ''],
      ],
      ['l', 'r', 'r', 'r', 'r', 'r', 'l', 'l'],
    ),
  )
  return ok
}

// ---------------------------------------------------------------------------------------
// Main

async function main(): Promise<number> {
  const root = await beginBenchmark({
    title: 'Tessera garbage collector benchmark',
    settings: [
      `a collection = a marking run, the clock moved past the grace period (${GRACE_MS / 1000} s), a sweeping run;`,
      `garbage chunks are ${GARBAGE_BYTES} B files in a disk blob store, live chunks rows only`,
    ],
    tmpPrefix: 'tessera-bench-gc-',
  })
  const outcome = await forEachBackend((backend) => benchBackend(backend, root))
  await runCleanups()
  if (isAborting()) return 1

  console.log(`\n${'='.repeat(110)}\nGARBAGE COLLECTION FIGURES`)
  for (const [backend, result] of outcome) {
    if (typeof result === 'string') console.log(`\n${backend}: ${result}`)
    else report(backend, result)
  }
  return failedPhasesExitCode()
}

runBenchmark(main)

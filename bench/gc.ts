import { existsSync, mkdirSync } from 'node:fs'
import path from 'node:path'
import { blobName } from '../src/domain/blob-key.js'
import type { Clock } from '../src/domain/clock.js'
import { GarbageCollector } from '../src/services/garbage-collector.js'
import { type Backend, forEachBackend } from './lib/backends.js'
import {
  type BenchStore,
  copyPath,
  GARBAGE_BYTES,
  type Garbage,
  openPostgresStore,
  openSqliteStore,
  writeGarbageFiles,
} from './lib/gc-stores.js'
import { failedPhasesExitCode, say } from './lib/phases.js'
import { isAborting, runBenchmark, runCleanups } from './lib/processes.js'
import { beginBenchmark, intEnv, QUICK } from './lib/settings.js'
import { fmt, fmtRatio, fmtSeconds, median, now, table } from './lib/timing.js'

const ROWS = intEnv('BENCH_GC_ROWS', QUICK ? 100_000 : 1_000_000)
const REPEAT = intEnv('BENCH_GC_REPEAT', QUICK ? 1 : 3)
/** The server's default GC_GRACE_SECONDS. */
const GRACE_MS = 3600_000
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

// The final section of bench/run.ts: every figure, then the goals, then what to read them with.
import os from 'node:os'
import type { LoadResult } from '../clients/load.js'
import type { SmallUploadsResult } from '../clients/small-uploads.js'
import type { RssReport } from './rss.js'
import type { BigUpload, Limit, Listing, TusFigures } from './run-measurements.js'
import { GOALS, SETTINGS, SIZE_MIB } from './run-settings.js'
import { fmt, fmtMiB, fmtMiBs, fmtRatio, fmtSeconds, MiB, median, mibPerSecond, table } from './timing.js'

/** What the phases found; undefined where a phase failed. */
export interface RunResults {
  limit?: Limit
  tus?: TusFigures
  big?: BigUpload
  /** Per size (MiB): the peak RSS of an upload + download, and the RSS before it. */
  rss: Map<number, { report: RssReport; idleRss: number }>
  smallSqlite?: SmallUploadsResult
  smallPg?: SmallUploadsResult
  /** Why the PostgreSQL phase did not run, if it did not. */
  pgSkipped?: string
  listing?: Listing
  listingTessera?: LoadResult
  healthz?: LoadResult
  listingBare?: LoadResult
}

/** The throughputs (MiB/s) the figures and goals compare; NaN where a phase failed. */
function ratesOf(r: RunResults) {
  const size = SETTINGS.sizeBytes
  const rate = (ms: number | undefined) => (ms === undefined ? Number.NaN : mibPerSecond(size, ms))
  const opensslRate = rate(r.limit?.opensslMs)
  const ddRate = rate(r.limit?.ddMs)
  return {
    opensslRate,
    ddRate,
    limitRate: Math.min(opensslRate, ddRate),
    sessionRate: rate(r.big?.upload.sessionMs),
    e2eRate: r.big ? mibPerSecond(size, r.big.upload.hashMs + r.big.upload.sessionMs) : Number.NaN,
    hashRate: rate(r.big?.upload.hashMs),
    tusRate: rate(r.tus?.plain.ms),
    tusDurableRate: r.tus ? rate(r.tus.plain.ms + r.tus.plain.syncMs) : Number.NaN,
    tusChunkedRate: rate(r.tus?.chunked?.ms),
    tesseraDownloadRate: rate(r.big ? median(r.big.tesseraMs) : undefined),
    bareDownloadRate: rate(r.big?.bareMs.length ? median(r.big.bareMs) : undefined),
  }
}

type Rates = ReturnType<typeof ratesOf>

const perSecond = (result: { perSecond: number } | undefined, unit: string) =>
  result ? `${fmt(result.perSecond)} ${unit}` : 'failed'
const latency = (result: { p50Ms: number; p99Ms: number } | undefined, digits = 1) =>
  result ? `p50 ${fmt(result.p50Ms, digits)} ms, p99 ${fmt(result.p99Ms, digits)} ms` : ''
const times = (ms: readonly number[] | undefined) => (ms?.length ? ms.map(fmtSeconds).join(', ') : 'failed')
const smallPgFigure = (r: RunResults, skipped: string) =>
  r.smallPg ? perSecond(r.smallPg, 'ops/s') : r.pgSkipped ? skipped : 'failed'

function uploadRows(r: RunResults, x: Rates): string[][] {
  const { limit, big, tus } = r
  return [
    ['openssl dgst -sha256', fmtMiBs(x.opensslRate), limit ? fmtSeconds(limit.opensslMs) : 'failed'],
    ['dd bs=4M conv=fsync (durable copy)', fmtMiBs(x.ddRate), limit ? fmtSeconds(limit.ddMs) : 'failed'],
    ['=> upload limit (slower of the two)', fmtMiBs(x.limitRate), ''],
    [
      'Tessera upload, session only',
      fmtMiBs(x.sessionRate),
      big
        ? `${fmtSeconds(big.upload.sessionMs)}: init → ${SETTINGS.uploadConcurrency} chunk PUTs in flight → complete`
        : 'failed',
    ],
    ['Tessera upload, client hashing only', fmtMiBs(x.hashRate), big ? fmtSeconds(big.upload.hashMs) : ''],
    ['Tessera upload, end-to-end (hash + session)', fmtMiBs(x.e2eRate), ''],
    [
      'tus upload (tus-js-client default chunkSize=Infinity)',
      fmtMiBs(x.tusRate),
      tus ? `${fmtSeconds(tus.plain.ms)}; @tus/file-store does not fsync` : 'failed',
    ],
    [
      'tus upload + sync afterwards (informational)',
      fmtMiBs(x.tusDurableRate),
      tus ? `+ ${fmtSeconds(tus.plain.syncMs)} of sync: what the same bytes cost once durable` : '',
    ],
    ...(tus?.chunked
      ? [
          [
            'tus upload, chunkSize=4 MiB (informational)',
            fmtMiBs(x.tusChunkedRate),
            fmtSeconds(tus.chunked.ms),
          ],
        ]
      : []),
  ]
}

function downloadAndMemoryRows(r: RunResults, x: Rates): string[][] {
  const reps = SETTINGS.downloadRepeat > 1 ? `, median of ${SETTINGS.downloadRepeat}` : ''
  return [
    [
      `Tessera download (GET /files/:id/download${reps})`,
      fmtMiBs(x.tesseraDownloadRate),
      times(r.big?.tesseraMs),
    ],
    [
      `bare http + fs.createReadStream download${reps}`,
      fmtMiBs(x.bareDownloadRate),
      `${times(r.big?.bareMs)} (interleaved with Tessera's)`,
    ],
    ...[...r.rss.entries()]
      .sort(([a], [b]) => a - b)
      .map(([sizeMiB, { report, idleRss }]) => [
        `Tessera peak RSS, upload + download ${sizeMiB} MiB`,
        fmtMiB(report.kernelPeak),
        `${report.peakWasReset ? 'VmHWM reset at phase start' : 'VmHWM since process start'}; ` +
          `sampled max VmRSS ${fmtMiB(report.sampledPeak)}; ${fmtMiB(idleRss)} before the phase`,
      ]),
    ...(r.tus ? [['tus server peak RSS, upload (informational)', fmtMiB(r.tus.rss.kernelPeak), '']] : []),
  ]
}

function requestRows(r: RunResults): string[][] {
  const { smallSqlite, smallPg, listingTessera, listingBare, healthz } = r
  const listingBytes = r.listing ? Buffer.byteLength(r.listing.body) : 0
  return [
    [
      '1 KiB uploads/s, SQLite',
      perSecond(smallSqlite, 'ops/s'),
      smallSqlite ? `${latency(smallSqlite)}, 16 in flight` : '',
    ],
    [
      '1 KiB uploads/s, PostgreSQL',
      smallPgFigure(r, 'SKIPPED'),
      smallPg ? `${latency(smallPg)}, 16 in flight` : (r.pgSkipped ?? ''),
    ],
    [
      'GET /files?folderId= (100 items), Tessera',
      perSecond(listingTessera, 'req/s'),
      listingTessera ? `${listingBytes} B body, ${latency(listingTessera, 2)}, 32 in flight` : '',
    ],
    [
      'same JSON from a bare http route',
      perSecond(listingBare, 'req/s'),
      listingBare ? `${latency(listingBare, 2)}, 32 in flight` : '',
    ],
    [
      'GET /healthz, Tessera (informational)',
      perSecond(healthz, 'req/s'),
      healthz ? `${latency(healthz, 2)}: the framework's floor, no auth, no database` : '',
    ],
  ]
}

function printFigures(r: RunResults, x: Rates): void {
  console.log(`\n${'='.repeat(110)}\nFIGURES (${SIZE_MIB} MiB random file, loopback)\n`)
  const rows = [
    ['measurement', 'figure', 'detail'],
    ...uploadRows(r, x),
    ...downloadAndMemoryRows(r, x),
    ...requestRows(r),
  ]
  console.log(table(rows, ['l', 'r', 'l']))
}

interface Goal {
  goal: string
  measured: string
  value: number
  target: number
  atLeast: boolean
  show: (value: number) => string
}

const ratioGoal = (goal: string, measured: string, value: number, target: number): Goal => ({
  goal,
  measured,
  value,
  target,
  atLeast: true,
  show: fmtRatio,
})

function rssGoal(r: RunResults, sizeMiB: number): Goal {
  const measured = r.rss.get(sizeMiB)?.report
  return {
    goal: `3  peak RSS, ${sizeMiB} MiB up + down`,
    measured: measured ? `VmHWM ${fmtMiB(measured.kernelPeak)}` : 'failed',
    value: measured ? measured.kernelPeak / MiB : Number.NaN,
    target: GOALS.peakRssMiB,
    atLeast: false,
    show: (value) => `${fmt(value)} MiB`,
  }
}

function goalsOf(r: RunResults, x: Rates): Goal[] {
  const listingTessera = r.listingTessera?.perSecond ?? Number.NaN
  const listingBare = r.listingBare?.perSecond ?? Number.NaN
  return [
    ratioGoal(
      '1a upload (session) / limit',
      `${fmtMiBs(x.sessionRate)} / ${fmtMiBs(x.limitRate)}`,
      x.sessionRate / x.limitRate,
      GOALS.uploadVsLimit,
    ),
    ratioGoal(
      '1b upload (session) / tus',
      `${fmtMiBs(x.sessionRate)} / ${fmtMiBs(x.tusRate)}`,
      x.sessionRate / x.tusRate,
      GOALS.uploadVsTus,
    ),
    ratioGoal(
      '2  download / bare http',
      `${fmtMiBs(x.tesseraDownloadRate)} / ${fmtMiBs(x.bareDownloadRate)}`,
      x.tesseraDownloadRate / x.bareDownloadRate,
      GOALS.downloadVsBare,
    ),
    ...SETTINGS.rssSizesMiB.map((sizeMiB) => rssGoal(r, sizeMiB)),
    {
      goal: '4  1 KiB uploads/s, SQLite',
      measured: perSecond(r.smallSqlite, 'ops/s'),
      value: r.smallSqlite?.perSecond ?? Number.NaN,
      target: GOALS.smallSqlitePerSecond,
      atLeast: true,
      show: (value) => `${fmt(value)}/s`,
    },
    ratioGoal(
      '5  listing / bare JSON route',
      `${fmt(listingTessera)} / ${fmt(listingBare)} req/s`,
      listingTessera / listingBare,
      GOALS.listingVsBare,
    ),
  ]
}

function verdict(goal: Goal): string {
  if (!Number.isFinite(goal.value)) return 'n/a'
  return (goal.atLeast ? goal.value >= goal.target : goal.value < goal.target) ? 'PASS' : 'MISS'
}

function printGoals(r: RunResults, x: Rates): void {
  console.log(`\n${'='.repeat(110)}\nGOALS (a miss is reported, never fatal)\n`)
  const rows = [
    ['goal', 'measured', 'ratio / value', 'target', 'result'],
    ...goalsOf(r, x).map((goal) => [
      goal.goal,
      goal.measured,
      goal.show(goal.value),
      `${goal.atLeast ? '>=' : '<'} ${goal.show(goal.target)}`,
      verdict(goal),
    ]),
    ['   (info) 1 KiB uploads/s, PostgreSQL', smallPgFigure(r, 'SKIPPED (unreachable)'), '', 'no goal', ''],
  ]
  console.log(table(rows, ['l', 'l', 'r', 'l', 'l']))
}

function printNotes(x: Rates): void {
  console.log(
    '\nNotes:\n' +
      '- 1a and 1b use the upload SESSION figure: init → chunk PUTs → complete, with the chunk hashes computed\n' +
      '  beforehand, as a sync client that indexed the file already has them. End-to-end, client hashing\n' +
      `  included: ${fmtMiBs(x.e2eRate)} = ${fmtRatio(x.e2eRate / x.limitRate)} of the limit, ${fmtRatio(x.e2eRate / x.tusRate)} of tus.\n` +
      '- Tessera fsyncs every chunk before acknowledging it; @tus/file-store does not fsync (see "tus upload +\n' +
      '  sync"). `sync` runs before each timed upload so that no phase pays for an earlier one\'s dirty pages.\n' +
      '- All reads come from the page cache (the random file was just written; RAM is ample).\n' +
      `- Client and server share ${os.cpus().length} CPU(s): the client process competes with the server it measures.`,
  )
}

export function report(results: RunResults): void {
  const rates = ratesOf(results)
  printFigures(results, rates)
  printGoals(results, rates)
  printNotes(rates)
}

// The final section of bench/run.ts: the uploads per size, then memory, downloads, small files
// and listings, each figure beside its goal (a missed goal says MISS), then how to read them.
import os from 'node:os'
import type { LoadResult } from '../clients/load.js'
import type { SmallFilesResult } from '../clients/small-files.js'
import type { Backend } from './backends.js'
import type { Downloads, Listing } from './run-measurements.js'
import { RSS_PEAKS } from './run-servers.js'
import { GOALS, SETTINGS } from './run-settings.js'
import { fmt, fmtMiB, fmtRatio, MiB, median, table } from './timing.js'
import { uploadTable, verdict } from './upload-report.js'
import type { UploadFigures } from './upload-rounds.js'

export interface SmallFigures {
  oneRequest?: SmallFilesResult
  threeRequest?: SmallFilesResult
}

/** What the phases found; undefined where a phase failed. */
export interface RunResults {
  backends: Backend[]
  /** Why PostgreSQL did not run, if it did not. */
  pgSkipped?: string
  uploads: UploadFigures[]
  downloads: Downloads[]
  small: Map<Backend, SmallFigures>
  listing?: Listing
  listingTessera?: LoadResult
  healthz?: LoadResult
  listingBare?: LoadResult
}

const rule = (title: string) => console.log(`\n${'='.repeat(110)}\n${title}\n`)

function memoryRows(backends: Backend[]): string[][] {
  return backends.map((backend) => {
    const peaks = RSS_PEAKS.filter((peak) => peak.backend === backend)
    const worst = peaks.reduce<(typeof peaks)[number] | undefined>(
      (max, peak) => (max && max.report.kernelPeak >= peak.report.kernelPeak ? max : peak),
      undefined,
    )
    const value = worst ? worst.report.kernelPeak / MiB : Number.NaN
    return [
      `server peak RSS, ${backend}`,
      worst ? fmtMiB(worst.report.kernelPeak) : 'n/a',
      `< ${GOALS.peakRssMiB} MiB`,
      verdict(value, GOALS.peakRssMiB, false),
      worst ? `VmHWM over each of ${peaks.length} servers' whole life; the highest: ${worst.phase}` : '',
    ]
  })
}

function downloadRows(downloads: Downloads[]): string[][] {
  return downloads.map((d) => {
    const ratio = median(d.bareMs) / median(d.tesseraMs)
    return [
      `download ${d.sizeMiB} MiB, SQLite / bare http`,
      fmtRatio(ratio),
      `>= ${GOALS.downloadVsBare}x`,
      verdict(ratio, GOALS.downloadVsBare),
      `median of ${d.tesseraMs.length}, interleaved with a bare fs.createReadStream server`,
    ]
  })
}

function smallRows(r: RunResults): string[][] {
  const cell = (result: SmallFilesResult | undefined) =>
    !result ? 'failed' : result.available ? `${fmt(result.perSecond)}/s` : 'not available'
  return r.backends.flatMap((backend) => {
    const { oneRequest, threeRequest } = r.small.get(backend) ?? {}
    const goal = GOALS.smallPerSecond[backend]
    const value = oneRequest?.available ? oneRequest.perSecond : Number.NaN
    const latency = (result: SmallFilesResult | undefined) =>
      result?.available ? `p50 ${fmt(result.p50Ms)} ms, p99 ${fmt(result.p99Ms)} ms` : ''
    return [
      [
        `4 KiB files, one request (PUT /files/content), ${backend}`,
        cell(oneRequest),
        `>= ${goal}/s`,
        oneRequest?.available === false ? 'n/a' : verdict(value, goal),
        `16 fetch clients; ${latency(oneRequest)}`,
      ],
      [
        `4 KiB files, init + PUT + complete, ${backend}`,
        cell(threeRequest),
        'info',
        '',
        `16 fetch clients; ${latency(threeRequest)}`,
      ],
    ]
  })
}

function listingRows(r: RunResults): string[][] {
  const tessera = r.listingTessera?.perSecond ?? Number.NaN
  const bare = r.listingBare?.perSecond ?? Number.NaN
  return [
    [
      'GET /files?folderId= (100 items) / bare JSON route',
      fmtRatio(tessera / bare),
      `>= ${GOALS.listingVsBare}x`,
      verdict(tessera / bare, GOALS.listingVsBare),
      `${fmt(tessera)} / ${fmt(bare)} req/s, 32 in flight; /healthz ${fmt(r.healthz?.perSecond ?? Number.NaN)} req/s`,
    ],
  ]
}

function printNotes(r: RunResults): void {
  console.log(
    '\nNotes:\n' +
      '- Each upload figure is the WHOLE upload as its user waits for it, from the first read of F to the\n' +
      '  answer of complete: reading and hashing the 4 MiB chunks on the client (fetch: node:crypto; curl:\n' +
      '  `dd | openssl dgst -sha256` per chunk), init, the chunk PUTs, complete. Every upload goes to a fresh\n' +
      '  server (nothing deduplicated), after `sync`. Medians over the rounds; ratios are median / median.\n' +
      "- The clients are not the project's: Node's global fetch, and curl + dd + openssl processes.\n" +
      '- tus-js-client sends the file (no hashing: the tus protocol has none); @tus/file-store never fsyncs.\n' +
      "- Peak RSS is the kernel's VmHWM of every Tessera server from its start (registration included) to its\n" +
      '  stop, sampled every 50 ms as a cross-check; the row shows the worst server.\n' +
      `- Client and server share ${os.cpus().length} CPU(s); reads come from the page cache.` +
      (r.pgSkipped ? `\n- PostgreSQL: ${r.pgSkipped}` : ''),
  )
}

export function report(r: RunResults): void {
  for (const figures of r.uploads) {
    rule(`UPLOADS, ${figures.sizeMiB} MiB (MiB/s; a missed goal says MISS)`)
    console.log(uploadTable(figures, r.backends))
    for (const failure of figures.failures) console.log(`  ! ${failure}`)
  }
  rule('MEMORY, DOWNLOADS, SMALL FILES, LISTINGS')
  const rows = [
    ['measurement', 'figure', 'goal', 'result', 'detail'],
    ...memoryRows(r.backends),
    ...downloadRows(r.downloads),
    ...smallRows(r),
    ...listingRows(r),
  ]
  console.log(table(rows, ['l', 'r', 'l', 'l', 'l']))
  printNotes(r)
  console.log(
    `(small files: ${SETTINGS.smallDurationMs / 1000} s windows after a ${SETTINGS.smallWarmupMs / 1000} s warm-up)`,
  )
}

// The upload section of bench/run.ts's report: per file size, every outside client's whole
// upload (median and range over the rounds) beside the limit and tus, as ratios with verdicts.
import type { Backend } from './backends.js'
import type { WholeUploadResult } from './outside-client.js'
import { GOALS, UPLOAD_CLIENTS } from './run-settings.js'
import { fmt, fmtRatio, fmtSeconds, median, mibPerSecond, table } from './timing.js'
import { type UploadFigures, uploadKey } from './upload-rounds.js'

/** PASS, MISS, or n/a when there is nothing to compare. */
export function verdict(value: number, target: number, atLeast = true): string {
  if (!Number.isFinite(value)) return 'n/a'
  return (atLeast ? value >= target : value < target) ? 'PASS' : 'MISS'
}

const ratioCell = (value: number, target: number) =>
  Number.isFinite(value) ? `${fmtRatio(value)} ${verdict(value, target)}` : 'n/a'

/** Median and range of throughputs (MiB/s) over the rounds. */
function spread(rates: number[]): { median: number; text: string } {
  if (rates.length === 0) return { median: Number.NaN, text: 'failed' }
  const low = Math.min(...rates)
  const high = Math.max(...rates)
  return { median: median(rates), text: rates.length > 1 ? `${fmt(low)}–${fmt(high)}` : '' }
}

function medianParts(results: WholeUploadResult[]): string {
  if (results.length === 0) return ''
  const of = (pick: (result: WholeUploadResult) => number) => median(results.map(pick))
  return (
    `hash ${fmtSeconds(of((r) => r.hashMs))}, init ${fmt(
      of((r) => r.initMs),
      0,
    )} ms, ` +
    `PUTs ${fmtSeconds(of((r) => r.putsMs))}, complete ${fmt(
      of((r) => r.completeMs),
      0,
    )} ms`
  )
}

function referenceRows(figures: UploadFigures, limitRate: number, tusRate: number): string[][] {
  const rate = (ms: number) => mibPerSecond(figures.bytes, ms)
  const row = (name: string, rates: number[], detail = '') => {
    const { median: value, text } = spread(rates)
    return [name, fmt(value), text, '', '', detail]
  }
  const limits = figures.limits
  return [
    row(
      'openssl dgst -sha256 F',
      limits.map((l) => rate(l.opensslMs)),
    ),
    row(
      'dd if=F of=OUT bs=4M conv=fsync',
      limits.map((l) => rate(l.ddMs)),
    ),
    [
      '=> LIMIT: the slower of the two',
      fmt(limitRate),
      spread(limits.map((l) => rate(Math.max(l.opensslMs, l.ddMs)))).text,
      '1.00x',
      '',
      `${limits.length} measurements, between the rounds`,
    ],
    [
      'tus-js-client → @tus/server + file-store',
      fmt(tusRate),
      spread(figures.tus.map((t) => rate(t.ms))).text,
      fmtRatio(tusRate / limitRate),
      '1.00x',
      'defaults: one PATCH; neither hashes nor fsyncs',
    ],
    row(
      '  tus, chunkSize 4 MiB (info)',
      figures.tus.map((t) => rate(t.chunkedMs)),
    ),
    row(
      '  tus, then `sync` (info)',
      figures.tus.map((t) => rate(t.ms + t.syncMs)),
      'what its bytes cost once durable',
    ),
  ]
}

function clientRows(figures: UploadFigures, backend: Backend, limitRate: number, tusRate: number) {
  return UPLOAD_CLIENTS.map((client) => {
    const results = figures.uploads.get(uploadKey(backend, client)) ?? []
    const { median: value, text } = spread(results.map((r) => mibPerSecond(figures.bytes, r.ms)))
    return [
      `${backend}: ${client.label}`,
      fmt(value),
      text,
      ratioCell(value / limitRate, GOALS.uploadVsLimit),
      ratioCell(value / tusRate, GOALS.uploadVsTus),
      medianParts(results),
    ]
  })
}

/** The upload table of one size. */
export function uploadTable(figures: UploadFigures, backends: Backend[]): string {
  const limitRate = median(
    figures.limits.map((l) => mibPerSecond(figures.bytes, Math.max(l.opensslMs, l.ddMs))),
  )
  const tusRate = median(figures.tus.map((t) => mibPerSecond(figures.bytes, t.ms)))
  const rows = [
    [
      `upload of F = ${figures.sizeMiB} MiB, ${figures.rounds} round(s)`,
      'MiB/s',
      'range',
      `/ limit (>=${GOALS.uploadVsLimit}x)`,
      `/ tus (>=${GOALS.uploadVsTus}x)`,
      'median parts of the whole upload',
    ],
    ...referenceRows(figures, limitRate, tusRate),
    ...backends.flatMap((backend) => clientRows(figures, backend, limitRate, tusRate)),
  ]
  return table(rows, ['l', 'r', 'r', 'l', 'l', 'l'])
}

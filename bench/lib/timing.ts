import { performance } from 'node:perf_hooks'

export const MiB = 1024 * 1024

export const now = (): number => performance.now()

/** Milliseconds taken by `work`, with its result. */
export async function timed<T>(work: () => Promise<T>): Promise<{ ms: number; value: T }> {
  const start = now()
  const value = await work()
  return { ms: now() - start, value }
}

export const mibPerSecond = (bytes: number, ms: number): number => bytes / MiB / (ms / 1000)

export function median(values: readonly number[]): number {
  if (values.length === 0) return Number.NaN
  const sorted = [...values].sort((a, b) => a - b)
  const middle = Math.floor(sorted.length / 2)
  return sorted.length % 2 === 1 ? sorted[middle]! : (sorted[middle - 1]! + sorted[middle]!) / 2
}

/** The p-th percentile (0..100) by nearest rank. */
export function percentile(values: readonly number[], p: number): number {
  if (values.length === 0) return Number.NaN
  const sorted = [...values].sort((a, b) => a - b)
  const rank = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))
  return sorted[rank]!
}

export const fmt = (value: number, digits = 1): string =>
  Number.isFinite(value)
    ? value.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits })
    : 'n/a'

export const fmtMiBs = (value: number): string => `${fmt(value)} MiB/s`
export const fmtMiB = (bytes: number): string => `${fmt(bytes / MiB)} MiB`
export const fmtSeconds = (ms: number): string => `${fmt(ms / 1000, 2)} s`
export const fmtRatio = (value: number): string => (Number.isFinite(value) ? `${value.toFixed(2)}x` : 'n/a')

/** Left-aligned text columns; numbers read best right-aligned, so `align` says which. */
export function table(rows: string[][], align: Array<'l' | 'r'> = []): string {
  const widths: number[] = []
  for (const row of rows) {
    row.forEach((cell, i) => {
      widths[i] = Math.max(widths[i] ?? 0, cell.length)
    })
  }
  const line = (row: string[]) =>
    row
      .map((cell, i) => (align[i] === 'r' ? cell.padStart(widths[i]!) : cell.padEnd(widths[i]!)))
      .join('  ')
      .trimEnd()
  const [head, ...body] = rows
  if (!head) return ''
  const rule = widths.map((width) => '-'.repeat(width)).join('  ')
  return [line(head), rule, ...body.map(line)].join('\n')
}

export interface WindowResult {
  /** Operations that ended inside the measured window. */
  count: number
  /** Operations that ended during the warm-up. */
  warmupCount: number
  seconds: number
  perSecond: number
  p50Ms: number
  p99Ms: number
}

/**
 * Runs `operation` in `concurrency` lanes through a warm-up and then a measured window;
 * only operations that end inside the window count, with their latencies.
 */
export async function measureWindow(
  window: { concurrency: number; warmupMs: number; durationMs: number },
  operation: (lane: number, n: number) => Promise<void>,
): Promise<WindowResult> {
  const windowStart = now() + window.warmupMs
  const windowEnd = windowStart + window.durationMs
  const latencies: number[] = []
  let warmupCount = 0
  const lane = async (laneIndex: number) => {
    for (let n = 0; now() < windowEnd; n++) {
      const began = now()
      await operation(laneIndex, n)
      const ended = now()
      if (ended >= windowStart && ended <= windowEnd) latencies.push(ended - began)
      else if (ended < windowStart) warmupCount++
    }
  }
  await Promise.all(Array.from({ length: window.concurrency }, (_, i) => lane(i)))
  const seconds = window.durationMs / 1000
  return {
    count: latencies.length,
    warmupCount,
    seconds,
    perSecond: latencies.length / seconds,
    p50Ms: percentile(latencies, 50),
    p99Ms: percentile(latencies, 99),
  }
}

/** Calls `work` back to back, `pauseMs` apart, until `stop` settles; answers each call's latency in ms. */
export async function latenciesUntil(
  stop: Promise<unknown>,
  pauseMs: number,
  work: () => Promise<unknown>,
): Promise<number[]> {
  const latencies: number[] = []
  let done = false
  void stop.finally(() => {
    done = true
  })
  while (!done) {
    const start = now()
    await work()
    latencies.push(now() - start)
    await new Promise((resolve) => setTimeout(resolve, pauseMs))
  }
  return latencies
}

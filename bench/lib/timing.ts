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

// The settings and goals of `npm run bench` (bench/run.ts), shared by its phases and its report.
import { intEnv, PG_ADMIN_URL, QUICK } from './settings.js'
import { MiB } from './timing.js'

export const SIZE_MIB = intEnv('BENCH_SIZE_MIB', QUICK ? 64 : 1024)

export const SETTINGS = {
  sizeBytes: SIZE_MIB * MiB,
  /** Peak RSS is measured on these sizes (API goal: 256 MiB and 1 GiB). */
  rssSizesMiB: [...new Set([Math.min(256, SIZE_MIB), SIZE_MIB])],
  chunkSize: 4 * MiB,
  uploadConcurrency: 8,
  downloadRepeat: QUICK ? 1 : 3,
  smallFileBytes: 1024,
  smallConcurrency: 16,
  smallWarmupMs: QUICK ? 500 : 2000,
  smallDurationMs: QUICK ? 2000 : 10_000,
  listingItems: 100,
  listingSubfolders: 10,
  loadConcurrency: 32,
  loadWarmupMs: QUICK ? 500 : 2000,
  loadDurationMs: QUICK ? 2000 : 10_000,
  pgAdminUrl: PG_ADMIN_URL,
}

export const GOALS = {
  uploadVsLimit: 0.8,
  uploadVsTus: 1.0,
  downloadVsBare: 0.8,
  peakRssMiB: 200,
  smallSqlitePerSecond: 300,
  listingVsBare: 0.3,
}

/** Time a client may take to move `bytes` `repeat` times: a minute, plus 2 MiB/s (a hang, not slowness). */
export const transferTimeout = (bytes: number, repeat = 1): number =>
  60_000 + (repeat * bytes * 1000) / (2 * MiB)
export const windowTimeout = (warmupMs: number, durationMs: number): number => warmupMs + durationMs + 60_000

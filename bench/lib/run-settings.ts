// The settings and goals of `npm run bench` (bench/run.ts), shared by its phases and its report.
import { intEnv, PG_ADMIN_URL, QUICK } from './settings.js'
import { MiB } from './timing.js'

/** BENCH_SIZES_MIB=256,1024: the sizes of the big random files (the 256 MiB and 1 GiB). */
function sizesMiB(): number[] {
  const raw = process.env.BENCH_SIZES_MIB ?? process.env.BENCH_SIZE_MIB
  if (raw === undefined || raw === '') return QUICK ? [16] : [256, 1024]
  const sizes = raw.split(',').map((item) => Number(item.trim()))
  if (sizes.some((size) => !Number.isSafeInteger(size) || size < 1))
    throw new Error(`BENCH_SIZES_MIB must list positive integers (got "${raw}")`)
  return sizes
}

export const SIZES_MIB = sizesMiB()

/** The outside clients whose uploads are measured, each against the limit and tus. */
export const UPLOAD_CLIENTS = [
  { id: 'fetch-2', script: 'fetch-upload.ts', concurrency: 2, label: 'Node fetch, Buffer bodies, 2 PUTs' },
  { id: 'fetch-8', script: 'fetch-upload.ts', concurrency: 8, label: 'Node fetch, Buffer bodies, 8 PUTs' },
  { id: 'curl-8', script: 'curl-upload.ts', concurrency: 8, label: 'curl, a process per chunk, 8 at a time' },
  { id: 'curl-1', script: 'curl-upload.ts', concurrency: 1, label: 'curl, a process per chunk, 1 at a time' },
] as const

export type UploadClient = (typeof UPLOAD_CLIENTS)[number]

export const SETTINGS = {
  /**
   * Rounds of every upload measurement (BENCH_ROUNDS): 3 for sizes up to 256 MiB, 2 above
   * (a 1 GiB round takes minutes), 1 in a quick run.
   */
  rounds: (sizeMiB: number) => intEnv('BENCH_ROUNDS', QUICK ? 1 : sizeMiB <= 256 ? 3 : 2),
  chunkSize: 4 * MiB,
  downloadRepeat: QUICK ? 1 : 3,
  smallFileBytes: 4 * 1024,
  smallConcurrency: 16,
  smallWarmupMs: QUICK ? 500 : 2000,
  smallDurationMs: QUICK ? 2000 : 8000,
  listingItems: 100,
  listingSubfolders: 10,
  loadConcurrency: 32,
  loadWarmupMs: QUICK ? 500 : 2000,
  loadDurationMs: QUICK ? 2000 : 8000,
  pgAdminUrl: PG_ADMIN_URL,
}

export const GOALS = {
  uploadVsLimit: 0.8,
  uploadVsTus: 1.0,
  downloadVsBare: 0.8,
  peakRssMiB: 200,
  smallPerSecond: { SQLite: 1000, PostgreSQL: 500 },
  listingVsBare: 0.3,
}

/** Time a client may take to move `bytes` `repeat` times: a minute, plus 2 MiB/s (a hang, not slowness). */
export const transferTimeout = (bytes: number, repeat = 1): number =>
  60_000 + (repeat * bytes * 1000) / (2 * MiB)
export const windowTimeout = (warmupMs: number, durationMs: number): number => warmupMs + durationMs + 60_000

// What every benchmark reads from its environment, and the header it starts with: the machine,
// the settings of the run, and the temp directory it works in.
import { rmSync } from 'node:fs'
import { mkdtemp } from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { DEFAULT_ADMIN_URL } from './postgres.js'
import { installExitHandlers, onExit } from './processes.js'
import { fmt } from './timing.js'

/** BENCH_QUICK=1: a smoke run (small sizes, short windows, single runs). */
export const QUICK = process.env.BENCH_QUICK === '1'
/** BENCH_PG=0 leaves out what needs PostgreSQL (the benchmarks that read it). */
export const PG_ENABLED = process.env.BENCH_PG !== '0'
/** BENCH_PG_URL: where throwaway databases are created (the server's `postgres` database). */
export const PG_ADMIN_URL = process.env.BENCH_PG_URL || DEFAULT_ADMIN_URL
/** BENCH_SKIP_BUILD=1: use the existing dist/ instead of running `npm run build`. */
export const SKIP_BUILD = process.env.BENCH_SKIP_BUILD === '1'
/** BENCH_KEEP_TMP=1: keep the temp directory (server logs) after the run. */
export const KEEP_TMP = process.env.BENCH_KEEP_TMP === '1'

/** A positive whole number from the environment (a benchmark knob), or `fallback` when unset. */
export function intEnv(name: string, fallback: number): number {
  const raw = process.env[name]
  if (raw === undefined || raw === '') return fallback
  const value = Number(raw)
  if (!Number.isSafeInteger(value) || value < 1)
    throw new Error(`${name} must be a positive integer (got "${raw}")`)
  return value
}

export interface BenchHeader {
  /** e.g. "Tessera sync benchmark" */
  title: string
  /** Appended to the machine line: what else about the machine this benchmark depends on. */
  machine?: string
  /** The run's settings, a line each. */
  settings: readonly string[]
  /** The temp directory's name: `<prefix>XXXXXX` under the system's. */
  tmpPrefix: string
}

/**
 * Starts a benchmark: exit handlers (no child outlives it), the header, and its temp directory,
 * removed at exit unless BENCH_KEEP_TMP=1. Answers the temp directory.
 */
export async function beginBenchmark(header: BenchHeader): Promise<string> {
  installExitHandlers()
  const cpus = os.cpus()
  console.log(`${header.title}${QUICK ? ' (BENCH_QUICK=1: smoke run, figures are indicative only)' : ''}`)
  console.log(
    `  ${new Date().toISOString()}, node ${process.version}, ${os.platform()} ${os.arch()}, ` +
      `${cpus.length} CPU (${cpus[0]?.model.trim() ?? '?'}), ${fmt(os.totalmem() / 1024 ** 3)} GiB RAM` +
      (header.machine ? `, ${header.machine}` : ''),
  )
  for (const line of header.settings) console.log(`  ${line}`)
  const root = await mkdtemp(path.join(os.tmpdir(), header.tmpPrefix))
  // On exit, after every child is gone (one of them may still be writing in it).
  onExit(() => {
    if (KEEP_TMP) console.log(`  (kept ${root})`)
    else rmSync(root, { recursive: true, force: true })
  })
  console.log(`  temp dir: ${root}`)
  return root
}

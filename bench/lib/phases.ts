// A benchmark runs as phases: each is announced, timed, and when it fails reported, while the
// others still run; the process exits 1 at the end when any could not run. A missed goal is a
// figure, never a failure.
import { isAborting } from './processes.js'
import { fmtSeconds, now } from './timing.js'

const failures: string[] = []

/** One line of what a phase found. */
export function say(line: string): void {
  console.log(`  · ${line}`)
}

/** Runs one phase; answers its value, or undefined when it failed (reported) or the run is aborting. */
export async function phase<T>(name: string, work: () => Promise<T>): Promise<T | undefined> {
  if (isAborting()) return undefined
  console.log(`\n▸ ${name}`)
  const start = now()
  try {
    const value = await work()
    say(`done in ${fmtSeconds(now() - start)}`)
    return value
  } catch (error) {
    if (isAborting()) return undefined
    const message = (error as Error).message
    failures.push(`${name}: ${message.split('\n')[0]}`)
    console.log(`  ✗ ${name} FAILED:\n${message.replace(/^/gm, '    ')}`)
    return undefined
  }
}

/** Says loudly that `what` does not run, and answers `why` (for the report). */
export function skip(what: string, why: string): string {
  console.log(`\n  !!!!!!!! SKIPPED: ${what}: ${why}\n`)
  return why
}

/**
 * Prints the phases that could not run (a benchmark's figures are never a failure, a phase that
 * did not run is) and answers the exit code: 1 when there were any.
 */
export function failedPhasesExitCode(): number {
  if (failures.length === 0) return 0
  console.log(
    `\n${failures.length} phase(s) FAILED:\n${failures.map((failure) => `- ${failure}`).join('\n')}`,
  )
  console.log("(the servers' logs are in the temp directory: run with BENCH_KEEP_TMP=1 to keep it)")
  return 1
}

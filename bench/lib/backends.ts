// The benchmarks that run on both metadata databases: SQLite always, PostgreSQL unless
// BENCH_PG=0 or it does not answer (then skipped, not failed).
import { phase, skip } from './phases.js'
import { postgresUnreachable } from './postgres.js'
import { isAborting } from './processes.js'
import { PG_ADMIN_URL, PG_ENABLED } from './settings.js'

export type Backend = 'SQLite' | 'PostgreSQL'

/** Runs `work` as one phase per backend; answers each one's result, or a line saying why there is none. */
export async function forEachBackend<T>(
  work: (backend: Backend) => Promise<T>,
): Promise<Map<Backend, T | string>> {
  const outcome = new Map<Backend, T | string>()
  for (const backend of ['SQLite', 'PostgreSQL'] as const) {
    if (isAborting()) break
    if (backend === 'PostgreSQL') {
      const unreachable = PG_ENABLED ? await postgresUnreachable(PG_ADMIN_URL) : 'not run (BENCH_PG=0)'
      if (unreachable) {
        outcome.set(backend, PG_ENABLED ? `SKIPPED: ${skip(backend, unreachable)}` : unreachable)
        continue
      }
    }
    let failure = 'not run'
    const result = await phase(backend, () =>
      work(backend).catch((error: unknown) => {
        failure = `FAILED: ${(error as Error).message}`
        throw error
      }),
    )
    outcome.set(backend, result === undefined ? failure : result)
  }
  return outcome
}

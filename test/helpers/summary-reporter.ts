import type { Reporter, SerializedError, TestModule, TestRunEndReason, TestSuite, Vitest } from 'vitest/node'

export interface RunCounts {
  passed: number
  failed: number
  skipped: number
}

/**
 * Counts test cases, plus one failure for each module or suite that failed outside its tests
 * (a module that does not load, a failing `beforeAll`/`afterAll`) and one for each unhandled
 * error. If the run still failed with nothing to show for it (interrupted, or no test files),
 * it counts one failure: CI greps this line and must never read "0 failed" for a failed run.
 */
export function countRun(
  testModules: ReadonlyArray<TestModule>,
  unhandledErrors: ReadonlyArray<SerializedError>,
  reason: TestRunEndReason,
): RunCounts {
  const counts: RunCounts = { passed: 0, failed: 0, skipped: 0 }
  for (const testModule of testModules) {
    for (const test of testModule.children.allTests()) {
      const { state } = test.result()
      // Pending at the end of a run means the test never ran (bail, interruption).
      if (state === 'pending') counts.skipped += 1
      else counts[state] += 1
    }
    const containers: Array<TestModule | TestSuite> = [testModule, ...testModule.children.allSuites()]
    counts.failed += containers.filter((container) => container.errors().length > 0).length
    if (testModule.state() === 'failed' && !hasFailure(testModule)) counts.failed += 1
  }
  counts.failed += unhandledErrors.length
  if (reason !== 'passed' && counts.failed === 0) counts.failed = 1
  return counts
}

/** Whether a failed module already shows up in the counts as a failed test or a suite error. */
function hasFailure(testModule: TestModule): boolean {
  if (testModule.errors().length > 0) return true
  for (const suite of testModule.children.allSuites()) if (suite.errors().length > 0) return true
  for (const _ of testModule.children.allTests('failed')) return true
  return false
}

export function formatSummary({ passed, failed, skipped }: RunCounts): string {
  return `tests: ${passed} passed, ${failed} failed${skipped > 0 ? `, ${skipped} skipped` : ''}`
}

/**
 * Prints `tests: N passed, M failed[, K skipped]` as the last line of a run, for CI to grep.
 * Listed after 'default' in vitest.config.ts, so it prints after the default summary.
 */
export default class SummaryReporter implements Reporter {
  #vitest: Vitest | undefined

  onInit(vitest: Vitest): void {
    this.#vitest = vitest
  }

  onTestRunEnd(
    testModules: ReadonlyArray<TestModule>,
    unhandledErrors: ReadonlyArray<SerializedError>,
    reason: TestRunEndReason,
  ): void {
    const line = formatSummary(countRun(testModules, unhandledErrors, reason))
    if (this.#vitest) this.#vitest.logger.log(line)
    else process.stdout.write(`${line}\n`)
  }
}

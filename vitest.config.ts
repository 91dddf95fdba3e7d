import { defineConfig, type TestProjectInlineConfiguration } from 'vitest/config'

/** Options every project shares (not `extends: true`: that would run the global setup once per project). */
const shared = {
  testTimeout: 30_000,
  hookTimeout: 60_000,
  pool: 'forks',
} as const

/**
 * What costs minutes or many processes: the 10 GiB file, the crash points of the server and of
 * the disk blob store (killed child processes), power cuts at every write, the storage model.
 */
const SLOW = [
  'test/e2e/large-file.test.ts',
  'test/crash/**/*.test.ts',
  'test/model/**/*.test.ts',
  'src/**/*.crash.test.ts',
  'src/**/*.power-loss.test.ts',
]

const project = (
  name: string,
  include: string[],
  exclude: string[] = [],
): TestProjectInlineConfiguration => ({
  test: { ...shared, name, include, exclude: ['**/node_modules/**', ...exclude] },
})

/**
 * Four projects, one `vitest run` (`npm test`) runs them all; `npm run test:<name>` runs one.
 * unit: in one process, no PostgreSQL (SQLite in memory, blob stores on a temp dir);
 * contract: the port contracts and migrations on every test database; e2e: the server as a
 * process, the collector, upkeep; slow: what takes minutes.
 */
export default defineConfig({
  test: {
    ...shared,
    globalSetup: ['test/helpers/global-setup.ts'],
    reporters: ['default', './test/helpers/summary-reporter.ts'],
    projects: [
      project('unit', ['src/**/*.test.ts', 'test/helpers/**/*.test.ts'], SLOW),
      project('contract', ['test/contract/**/*.test.ts']),
      project('e2e', ['test/e2e/**/*.test.ts', 'test/gc/**/*.test.ts', 'test/upkeep/**/*.test.ts'], SLOW),
      project('slow', SLOW),
    ],
  },
})

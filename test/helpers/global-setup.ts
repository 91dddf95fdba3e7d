import type { TestProject } from 'vitest/node'
import { openPostgresMetadataStore } from '../../src/adapters/postgres/postgres-metadata-store.js'
import {
  baseUrl,
  createTestDatabaseNamed,
  databaseUrl,
  dropRunDatabases,
  newRunId,
  templateName,
  withAdminClient,
} from './postgres-admin.js'
import { selectedDatabases } from './test-backends.js'

/** Projects (vitest.config.ts) whose tests never open PostgreSQL. */
const NO_POSTGRES_PROJECTS = new Set(['unit'])

declare module 'vitest' {
  export interface ProvidedContext {
    /** Whether PostgreSQL answered at startup; PostgreSQL suites are skipped otherwise. */
    postgresAvailable: boolean
    /** TEST_DATABASE_URL, or the default. */
    postgresBaseUrl: string
    /** Names this run's databases; see postgres-admin.ts. */
    postgresRunId: string
  }
}

/**
 * Once per `vitest run`: finds out whether PostgreSQL answers, and if so migrates a template
 * database that every test clones (CREATE DATABASE ... TEMPLATE, as Immich's medium tests
 * do), so no test pays for migrations. Teardown drops this run's databases.
 */
export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const url = baseUrl()
  const runId = newRunId()
  project.provide('postgresBaseUrl', url)
  project.provide('postgresRunId', runId)
  if (!postgresWanted(project)) {
    // Not a failure, not worth a warning: the run asked for no PostgreSQL.
    project.provide('postgresAvailable', false)
    return async () => {}
  }
  const problem = await prepareTemplate(url, runId)
  const message = (why: string) =>
    [
      '',
      '='.repeat(78),
      '  PostgreSQL IS NOT AVAILABLE: every PostgreSQL test of this run is SKIPPED.',
      `  Tried ${redact(url)} (set TEST_DATABASE_URL to point elsewhere).`,
      `  ${why}`,
      '='.repeat(78),
      '',
    ].join('\n')
  if (problem !== null) {
    if (process.env.CI)
      throw new Error(`${message(problem)}\nCI is set: PostgreSQL must be reachable, failing.`)
    console.warn(message(problem))
  }
  project.provide('postgresAvailable', problem === null)

  return async () => {
    if (problem !== null) {
      // Again at the end, where it cannot scroll away behind the test output.
      console.warn(message(problem))
      return
    }
    await withAdminClient(url, (client) => dropRunDatabases(client, runId))
  }
}

/** Null when the template is ready, else why PostgreSQL cannot be used. */
async function prepareTemplate(url: string, runId: string): Promise<string | null> {
  try {
    await withAdminClient(url, async (client) => {
      await dropRunDatabases(client, runId)
      await createTestDatabaseNamed(client, templateName(runId))
    })
  } catch (error) {
    return `Connecting failed: ${error instanceof Error ? error.message : String(error)}`
  }
  // A migration failure is a bug, not an unavailable server: let it fail the run.
  const store = await openPostgresMetadataStore({ url: databaseUrl(url, templateName(runId)), poolSize: 1 })
  await store.close()
  return null
}

/** TEST_BACKENDS lists PostgreSQL, and the run has a project that may use it. */
function postgresWanted(project: TestProject): boolean {
  if (!selectedDatabases().includes('postgres')) return false
  return project.vitest.projects.some((each) => !NO_POSTGRES_PROJECTS.has(each.name))
}

const redact = (url: string): string => url.replace(/\/\/([^:@/]+):[^@/]*@/, '//$1:***@')

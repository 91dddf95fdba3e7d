import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { afterAll, beforeAll } from 'vitest'
import { loadConfig } from '../../src/config.js'
import type { Millis } from '../../src/domain/model.js'
import { type RunningServer, startServer } from '../../src/main.js'
import { ApiClient } from './api-client.js'
import { createTestDatabase } from './databases.js'

export type Backend = 'sqlite' | 'postgres'

export interface TestServer extends RunningServer {
  api: string
  dataDir: string
  /** Moves the server's clock forward (upload and session expiry without sleeping); or back. */
  advance(ms: Millis): void
  /** The server's clock. */
  now(): Millis
  /** What a `tessera` command needs to work on the same data: DATA_DIR, and DATABASE_URL on PostgreSQL. */
  storeEnv: Record<string, string>
  stop(): Promise<void>
}

/**
 * The real server, composed by main.ts exactly as `tessera serve` does, on a fresh data
 * directory and (for PostgreSQL) a fresh database, listening on a free loopback port.
 */
export async function startTestServer(
  backend: Backend,
  env: Record<string, string> = {},
): Promise<TestServer> {
  const dataDir = await mkdtemp(path.join(tmpdir(), 'tessera-e2e-'))
  const database = backend === 'postgres' ? await createTestDatabase() : null
  const config = loadConfig({
    DATA_DIR: dataDir,
    PORT: '0',
    HOST: '127.0.0.1',
    // Cheap hashes keep the suite fast; production uses OWASP's argon2id minimum.
    ARGON2_MEMORY_KIB: '1024',
    ARGON2_PASSES: '1',
    LOG_LEVEL: 'silent',
    RATE_LIMIT_PER_MINUTE: '0',
    LOGIN_RATE_LIMIT_PER_MINUTE: '1000',
    SHARE_RATE_LIMIT_PER_MINUTE: '100000',
    // Every suite's requests come from 127.0.0.1, and many test refusals (401s) on purpose.
    ANON_RATE_LIMIT_PER_MINUTE: '1000000',
    // Likewise for connections (MAX_CONNECTIONS_PER_ADDRESS): suites open many at once.
    MAX_CONNECTIONS_PER_ADDRESS: '0',
    // Suites build files from chunks of a few bytes (chunkSizes); production's 64 KiB least chunk
    // size is tested where it is set explicitly (test/e2e/chunk-minimum.test.ts).
    UPLOAD_MIN_CHUNK_BYTES: '1',
    ...(database ? { DATABASE_URL: database.url } : {}),
    ...env,
  })
  let offset = 0
  const server = await startServer(config, { clock: () => Date.now() + offset })
  return {
    ...server,
    api: `${server.url}/api/v1`,
    dataDir,
    advance: (ms) => {
      offset += ms
    },
    now: () => Date.now() + offset,
    storeEnv: { DATA_DIR: dataDir, ...(database ? { DATABASE_URL: database.url } : {}) },
    async stop() {
      await server.close()
      await database?.drop()
      await rm(dataDir, { recursive: true, force: true })
    },
  }
}

export interface ServerWithUsers {
  server: TestServer
  /** Registered accounts, in order (`users[0]` is "ann", `users[1]` "bob" in the suites). */
  users: ApiClient[]
}

/**
 * The usual suite setup: a server on `backend` with `count` registered users, started before
 * the suite's tests and stopped after them (nothing is started when `available` is false).
 * Read the fields inside tests, not at collection time.
 */
export function serverWithUsers(
  backend: Backend,
  available: boolean,
  count: number,
  env: Record<string, string> = {},
): ServerWithUsers {
  const context = { users: [] } as unknown as ServerWithUsers
  beforeAll(async () => {
    if (!available) return
    context.server = await startTestServer(backend, env)
    for (let i = 0; i < count; i++) context.users.push(await new ApiClient(context.server.api).register())
  })
  afterAll(async () => context.server?.stop())
  return context
}

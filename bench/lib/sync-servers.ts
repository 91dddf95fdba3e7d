// Tessera servers and accounts for bench/sync.ts: servers started as bench/run.ts starts them
// (its environment, plus cheap password hashing and no upkeep), waited on until /readyz.
import { mkdir } from 'node:fs/promises'
import path from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { request } from 'undici'
import { API_PREFIX, forEachConcurrently } from './api.js'
import { freePort } from './net.js'
import { onCleanup, type ServerProcess, startServerProcess } from './processes.js'
import { now } from './timing.js'

/**
 * A benchmark server's environment: only what the benchmark sets, no stray DATABASE_URL or S3_*.
 * Every client of a bench comes from 127.0.0.1: no request or per-address connection limit.
 */
export function benchServerEnv(values: Record<string, string>): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env }
  for (const key of Object.keys(env)) {
    if (/^(DATABASE_URL|S3_|AMQP_URL|REDIS_URL|PORT$|HOST$|DATA_DIR$)/.test(key)) delete env[key]
  }
  return {
    ...env,
    HOST: '127.0.0.1',
    LOG_LEVEL: 'warn',
    RATE_LIMIT_PER_MINUTE: '0',
    MAX_CONNECTIONS_PER_ADDRESS: '0',
    ...values,
  }
}

/** The sync benchmark's servers: thousands of sockets and accounts from one address. */
function tesseraEnv(values: Record<string, string>): NodeJS.ProcessEnv {
  return benchServerEnv({
    MAX_CONNECTIONS: '0',
    // Thousands of registrations from one address, cheaply hashed: the benchmark is about sync.
    LOGIN_RATE_LIMIT_PER_MINUTE: '1000000',
    ARGON2_MEMORY_KIB: '1024',
    ARGON2_PASSES: '1',
    // No storage upkeep in the middle of a measurement.
    GC_INTERVAL_SECONDS: '0',
    ...values,
  })
}

/** Starts `tessera serve` (`command`) with its data under `root`; stopped at cleanup at the latest. */
export async function startTessera(
  command: { command: string; args: string[] },
  name: string,
  root: string,
  extraEnv: Record<string, string> = {},
): Promise<ServerProcess> {
  const dataDir = path.join(root, `${name}-data`)
  await mkdir(dataDir, { recursive: true })
  const port = await freePort()
  const server = await startServerProcess({
    name,
    command: command.command,
    args: [...command.args, 'serve'],
    port,
    env: tesseraEnv({ DATA_DIR: dataDir, PORT: String(port), ...extraEnv }),
    logFile: path.join(root, `${name}.log`),
  })
  onCleanup(() => server.stop())
  // Listening is not enough with a broker: /readyz answers 200 once every store (the bus) does.
  for (let tries = 0; ; tries++) {
    const response = await request(`${server.url}/readyz`).catch(() => undefined)
    const text = await response?.body.text()
    if (response?.statusCode === 200) break
    if (tries >= 100) throw new Error(`${name} not ready after 10 s: ${response?.statusCode} ${text}`)
    await sleep(100)
  }
  return server
}

export async function postJson<T>(base: string, route: string, body: unknown, expect: number): Promise<T> {
  const response = await request(`${base}${API_PREFIX}${route}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
  })
  const text = await response.body.text()
  if (response.statusCode !== expect) throw new Error(`POST ${route}: ${response.statusCode} ${text}`)
  return JSON.parse(text) as T
}

export const PASSWORD = 'benchmark password 1'

export interface Accounts {
  emails: string[]
  tokens: string[]
  userIds: string[]
  /** How long registering them all took. */
  ms: number
}

/** Registers `n` users (`concurrency` at a time); index i is user i everywhere. */
export async function registerUsers(
  server: ServerProcess,
  n: number,
  tag: string,
  concurrency: number,
): Promise<Accounts> {
  const accounts: Accounts = { emails: [], tokens: [], userIds: [], ms: 0 }
  const start = now()
  await forEachConcurrently(n, concurrency, async (i) => {
    const email = `sync-${tag}-${i}@example.com`
    const { user, token } = await postJson<{ user: { id: string }; token: string }>(
      server.url,
      '/auth/register',
      { email, password: PASSWORD },
      201,
    )
    accounts.emails[i] = email
    accounts.tokens[i] = token
    accounts.userIds[i] = user.id
  })
  accounts.ms = now() - start
  return accounts
}

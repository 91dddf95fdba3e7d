// The Tessera servers of every benchmark: which `tessera` runs (this checkout built, from source,
// or a baseline commit's build), the environment it runs in, and one way to start it.
import { existsSync } from 'node:fs'
import { mkdir } from 'node:fs/promises'
import path from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { request } from 'undici'
import { freePort } from './net.js'
import { phase } from './phases.js'
import {
  onCleanup,
  REPO_ROOT,
  runCommand,
  type ServerProcess,
  startServerProcess,
  tsNode,
} from './processes.js'
import { SKIP_BUILD } from './settings.js'

/** A `tessera` to run (`serve` is appended), and how the report names it. */
export interface TesseraCommand {
  command: string
  args: string[]
  label: string
}

/** `tree`'s build (dist/cli/main.js). */
export function builtTessera(tree = REPO_ROOT): TesseraCommand {
  return {
    command: process.execPath,
    args: [path.join(tree, 'dist/cli/main.js')],
    label: 'node dist/cli/main.js serve',
  }
}

/** This checkout from source through tsx: slower to start, the same code. */
export function sourceTessera(): TesseraCommand {
  return {
    ...tsNode(path.join(REPO_ROOT, 'src/cli/main.ts')),
    label: 'node --import tsx src/cli/main.ts serve',
  }
}

/** The build phase: `npm run build` (unless BENCH_SKIP_BUILD=1); undefined when it failed. */
export function buildTessera(): Promise<TesseraCommand | undefined> {
  return phase('build (npm run build)', async () => {
    if (!SKIP_BUILD) await runCommand('npm', ['run', 'build'])
    const built = builtTessera()
    if (!existsSync(built.args[0]!)) throw new Error('dist/cli/main.js is missing')
    return built
  })
}

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

/** For benchmarks of many sockets and accounts from one address, not of storage or hashing. */
export const MANY_ACCOUNTS_ENV: Readonly<Record<string, string>> = {
  MAX_CONNECTIONS: '0',
  // Thousands of registrations from one address, cheaply hashed.
  LOGIN_RATE_LIMIT_PER_MINUTE: '1000000',
  ARGON2_MEMORY_KIB: '1024',
  ARGON2_PASSES: '1',
  // No storage upkeep in the middle of a measurement.
  GC_INTERVAL_SECONDS: '0',
}

export interface StartTesseraOptions {
  command: TesseraCommand
  /** Names its data directory and log file under `root`. */
  name: string
  root: string
  /** Over benchServerEnv's. */
  env?: Record<string, string>
  /**
   * 'readyz' (the default) waits until /readyz answers 200, as it does once every store (a
   * broker too) does; 'port' only until the port accepts, so that no request has touched it yet.
   */
  waitFor?: 'port' | 'readyz'
}

/** Starts `tessera serve` with its data under `root`; stopped at cleanup at the latest. */
export async function startTessera(options: StartTesseraOptions): Promise<ServerProcess> {
  const { command, name, root } = options
  const dataDir = path.join(root, `${name}-data`)
  await mkdir(dataDir, { recursive: true })
  const port = await freePort()
  const server = await startServerProcess({
    name,
    command: command.command,
    args: [...command.args, 'serve'],
    port,
    env: benchServerEnv({ DATA_DIR: dataDir, PORT: String(port), ...options.env }),
    logFile: path.join(root, `${name}.log`),
  })
  onCleanup(() => server.stop())
  if (options.waitFor !== 'port') await untilReady(server)
  return server
}

async function untilReady(server: ServerProcess): Promise<void> {
  for (let tries = 0; ; tries++) {
    const response = await request(`${server.url}/readyz`).catch(() => undefined)
    const text = await response?.body.text()
    if (response?.statusCode === 200) return
    if (tries >= 100) throw new Error(`${server.name} not ready after 10 s: ${response?.statusCode} ${text}`)
    await sleep(100)
  }
}

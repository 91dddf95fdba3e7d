import { type ChildProcess, spawn } from 'node:child_process'
import { mkdtemp, rm } from 'node:fs/promises'
import net from 'node:net'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'

const CLI = fileURLToPath(new URL('../../src/cli/main.ts', import.meta.url))
const START_TIMEOUT_MS = 30_000

export interface ServerProcess {
  /** http://127.0.0.1:<port> */
  url: string
  /** The API root: url + /api/v1. */
  api: string
  /** DATA_DIR: the chunks and (without DATABASE_URL) the SQLite database. */
  dataDir: string
  /** What the process printed (its JSON log lines), for a failing test's message. */
  readonly output: string
  /**
   * SIGTERM, a graceful shutdown; SIGKILL if it takes longer than 10 s. Removes the data
   * directory unless the caller passed its own.
   */
  stop(): Promise<void>
  /** SIGKILL now, as a crash of the process (the machine keeps running); resolves once it is gone. */
  kill(): Promise<void>
}

export interface ServerProcessOptions {
  /** Runs on this data directory, which the caller owns: stop() leaves it (a restart reuses it). */
  dataDir?: string
  /**
   * A command to run the server under, e.g. `['strace', '-f', ...]`, ending where the node
   * command line starts. The wrapper and the server get a process group of their own, and every
   * signal goes to the whole group.
   */
  wrapper?: string[]
}

/**
 * `tessera serve` in a process of its own, configured only by `env` (as an operator would),
 * on a free loopback port with a fresh data directory: for tests of several API nodes.
 */
export async function startServerProcess(
  env: Record<string, string>,
  options: ServerProcessOptions = {},
): Promise<ServerProcess> {
  const port = await freePort()
  const dataDir = options.dataDir ?? (await mkdtemp(path.join(tmpdir(), 'tessera-node-')))
  const node = [process.execPath, '--import', 'tsx', CLI, 'serve']
  const [command, ...args] = [...(options.wrapper ?? []), ...node] as [string, ...string[]]
  const child: ChildProcess = spawn(command, args, {
    detached: options.wrapper !== undefined,
    env: {
      PATH: process.env.PATH ?? '',
      HOME: process.env.HOME ?? tmpdir(),
      PORT: String(port),
      HOST: '127.0.0.1',
      DATA_DIR: dataDir,
      ARGON2_MEMORY_KIB: '1024',
      ARGON2_PASSES: '1',
      LOG_LEVEL: 'warn',
      RATE_LIMIT_PER_MINUTE: '0',
      LOGIN_RATE_LIMIT_PER_MINUTE: '1000',
      ANON_RATE_LIMIT_PER_MINUTE: '1000000',
      // Likewise for connections (MAX_CONNECTIONS_PER_ADDRESS): suites open many at once.
      MAX_CONNECTIONS_PER_ADDRESS: '0',
      ...env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  let output = ''
  child.stdout?.setEncoding('utf8').on('data', (text: string) => {
    output += text
  })
  child.stderr?.setEncoding('utf8').on('data', (text: string) => {
    output += text
  })
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()))
  const signal = (name: NodeJS.Signals) => {
    if (options.wrapper === undefined || child.pid === undefined) child.kill(name)
    else {
      try {
        process.kill(-child.pid, name)
      } catch {
        // ESRCH: the group is gone already.
      }
    }
  }
  const running = () => child.exitCode === null && child.signalCode === null
  const url = `http://127.0.0.1:${port}`
  const kill = async () => {
    if (running()) signal('SIGKILL')
    await exited
  }
  const stop = async () => {
    if (running()) {
      signal('SIGTERM')
      const timer = setTimeout(() => signal('SIGKILL'), 10_000)
      await exited
      clearTimeout(timer)
    }
    if (options.dataDir === undefined) await rm(dataDir, { recursive: true, force: true })
  }
  const deadline = Date.now() + START_TIMEOUT_MS
  for (;;) {
    if (child.exitCode !== null) {
      await stop()
      throw new Error(`the server process exited with ${child.exitCode}:\n${output}`)
    }
    if (await answers(`${url}/healthz`)) break
    if (Date.now() > deadline) {
      await stop()
      throw new Error(`the server process did not answer within ${START_TIMEOUT_MS} ms:\n${output}`)
    }
    await new Promise((resolve) => setTimeout(resolve, 100))
  }
  return {
    url,
    api: `${url}/api/v1`,
    dataDir,
    get output() {
      return output
    },
    stop,
    kill,
  }
}

async function answers(url: string): Promise<boolean> {
  try {
    return (await fetch(url)).ok
  } catch {
    return false
  }
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer()
    server.once('error', reject)
    server.listen(0, '127.0.0.1', () => {
      const address = server.address()
      const port = typeof address === 'object' && address ? address.port : 0
      server.close(() => (port > 0 ? resolve(port) : reject(new Error('no free port'))))
    })
  })
}

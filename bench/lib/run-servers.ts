// The servers of bench/run.ts: Tessera with one account on SQLite or PostgreSQL, its memory
// sampled from the moment it listens until it stops, and the bare servers it is measured against.
import { rm } from 'node:fs/promises'
import path from 'node:path'
import { Agent } from 'undici'
import { register, Tessera } from './api.js'
import type { Backend } from './backends.js'
import { freePort } from './net.js'
import { createBenchDatabase } from './postgres.js'
import { benchFile, type ServerProcess, startServerProcess, tsNode } from './processes.js'
import { type RssReport, RssSampler, readMemory } from './rss.js'
import { PG_ADMIN_URL } from './settings.js'
import { startTessera, type TesseraCommand } from './tessera-server.js'

export interface TesseraServer {
  process: ServerProcess
  api: Tessera
  token: string
  /** VmRSS after the registration (argon2id). */
  registeredRss: number
  /** Stops the server (and drops its database); answers its memory over its whole life. */
  close(): Promise<RssReport>
}

/** One server's peak RSS: VmHWM from start to stop, and where it was measured. */
export interface RssPeak {
  backend: Backend
  phase: string
  report: RssReport
}

/** Every server's peak, for the report: the goal holds "throughout every phase". */
export const RSS_PEAKS: RssPeak[] = []

/**
 * Starts Tessera on `backend` (PostgreSQL: a throwaway database) and registers one account (one
 * per server: argon2id is deliberately slow). Its data directory and database go at close.
 */
export async function startTesseraWithAccount(
  command: TesseraCommand,
  backend: Backend,
  name: string,
  root: string,
): Promise<TesseraServer> {
  const database = backend === 'PostgreSQL' ? await createBenchDatabase(PG_ADMIN_URL) : undefined
  // GET /healthz is measured under load: the anonymous request limit would answer 429 instead.
  const env: Record<string, string> = { ANON_RATE_LIMIT_PER_MINUTE: '0' }
  if (database) env.DATABASE_URL = database.url
  const start = () => startTessera({ command, name, root, env, waitFor: 'port' })
  // One retry: on a machine shared with other work, a server has been seen killed while starting.
  const server = await start()
    .catch(start)
    .catch(async (error) => {
      await database?.drop()
      await rm(path.join(root, `${name}-data`), { recursive: true, force: true })
      throw error
    })
  const sampler = new RssSampler(server.pid, 50)
  sampler.start(false)
  const cleanup = async () => {
    await server.stop()
    await database?.drop()
    await rm(path.join(root, `${name}-data`), { recursive: true, force: true })
  }
  const { token } = await register(server.url, `bench-${Date.now()}@example.com`).catch(async (error) => {
    sampler.stop()
    await cleanup()
    throw new Error(`register on ${name}: ${(error as Error).message}`)
  })
  const dispatcher = new Agent({ connections: 8 })
  let closing: Promise<RssReport> | undefined
  return {
    process: server,
    api: new Tessera(server.url, token, dispatcher),
    token,
    registeredRss: readMemory(server.pid)?.rss ?? Number.NaN,
    close() {
      closing ??= (async () => {
        await dispatcher.destroy()
        const rss = sampler.stop()
        RSS_PEAKS.push({ backend, phase: name, report: rss })
        await cleanup()
        return rss
      })()
      return closing
    },
  }
}

/** Runs `work` on a fresh server, closed afterwards whatever happens. */
export async function withTessera<T>(
  command: TesseraCommand,
  backend: Backend,
  name: string,
  root: string,
  work: (server: TesseraServer) => Promise<T>,
): Promise<T> {
  const server = await startTesseraWithAccount(command, backend, name, root)
  try {
    return await work(server)
  } finally {
    await server.close()
  }
}

/** Starts one of bench/servers/ with `config` (plus its port). */
export async function startBareServer(
  name: string,
  script: string,
  config: object,
  root: string,
): Promise<ServerProcess> {
  const port = await freePort()
  const { command, args } = tsNode(benchFile(`servers/${script}`))
  return startServerProcess({
    name,
    command,
    args: [...args, JSON.stringify({ ...config, port })],
    port,
    logFile: path.join(root, `${name}.log`),
  })
}

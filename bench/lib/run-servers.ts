// The servers of bench/run.ts: Tessera with one account (its memory read before and after the
// registration), and the bare servers it is measured against.
import path from 'node:path'
import { Agent } from 'undici'
import { register, Tessera } from './api.js'
import { freePort } from './net.js'
import { say } from './phases.js'
import { benchFile, type ServerProcess, startServerProcess, tsNode } from './processes.js'
import { readMemory } from './rss.js'
import { startTessera, type TesseraCommand } from './tessera-server.js'
import { fmtMiB } from './timing.js'

export interface TesseraServer {
  process: ServerProcess
  api: Tessera
  token: string
  /** VmRSS once listening, before any request; and after the registration (argon2id). */
  idleRss: number
  registeredRss: number
  close(): Promise<void>
}

/** Starts Tessera and registers one account on it (one per server: argon2id is deliberately slow). */
export async function startTesseraWithAccount(
  command: TesseraCommand,
  name: string,
  root: string,
  env: Record<string, string> = {},
): Promise<TesseraServer> {
  // GET /healthz is measured under load: the anonymous request limit would answer 429 instead.
  const server = await startTessera({
    command,
    name,
    root,
    env: { ANON_RATE_LIMIT_PER_MINUTE: '0', ...env },
    waitFor: 'port',
  })
  const idleRss = readMemory(server.pid)?.rss ?? Number.NaN
  const { token } = await register(server.url, `bench-${Date.now()}@example.com`).catch(async (error) => {
    await server.stop()
    throw new Error(`register on ${name}: ${(error as Error).message}`)
  })
  const dispatcher = new Agent({ connections: 8 })
  const registeredRss = readMemory(server.pid)?.rss ?? Number.NaN
  let closing: Promise<void> | undefined
  say(`${name}: RSS ${fmtMiB(idleRss)} when listening, ${fmtMiB(registeredRss)} after one registration`)
  return {
    process: server,
    api: new Tessera(server.url, token, dispatcher),
    token,
    idleRss,
    registeredRss,
    close() {
      closing ??= dispatcher.destroy().then(() => server.stop())
      return closing
    },
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

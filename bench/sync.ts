// `npm run bench:sync`: how fast a change made on one device reaches another device of the same
// user over the sync WebSocket, against references measured in this run on this machine. A
// benchmark, not a test: a missed goal prints MISS and never fails the process (a phase that
// cannot run at all exits 1 at the end).
//
// The writer (device A) and the listener (device B's sockets) are two processes; latency is the
// listener's arrival time minus the writer's send (or response) time on process.hrtime, the
// machine's monotonic clock, which every process on it shares (the ws reference checks it).
//   (a) embedded: one server, SQLite, in-process bus
//   (b) RabbitMQ: two servers on one PostgreSQL database and RabbitMQ; writes go to server 1,
//       the listener's socket is on server 2, so every event crosses the broker
//   fan-out: SOCKETS users, one socket each in one listener process, one change per user
//
//   BENCH_QUICK=1           smoke run: 100 changes, 100 sockets
//   BENCH_SYNC_CHANGES=N    measured changes per latency scenario (default 1000)
//   BENCH_SYNC_SOCKETS=N    sockets (= users) of the fan-out (default 1000)
//   BENCH_SYNC_FANOUT_CONCURRENCY=N  fan-out writes in flight (default 8)
//   BENCH_PG=0              skip the PostgreSQL + RabbitMQ phases
//   BENCH_PG_URL=...        PostgreSQL admin URL (default postgres://postgres@127.0.0.1:5432/postgres)
//   BENCH_AMQP_URL=...      RabbitMQ (default amqp://guest:guest@127.0.0.1:5672)
//   BENCH_SKIP_BUILD=1      use the existing dist/ instead of running `npm run build`
//   BENCH_KEEP_TMP=1        keep the temp directory (server logs) after the run
import { existsSync } from 'node:fs'
import { writeFile } from 'node:fs/promises'
import path from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { connect as amqpConnect } from 'amqplib'
import type { AmqpLatencyResult } from './clients/amqp-latency.js'
import type { SyncListenerResult } from './clients/sync-listener.js'
import type { SyncWriterResult } from './clients/sync-writer.js'
import type { WsRoundTripResult } from './clients/ws-roundtrip.js'
import { API_PREFIX, PASSWORD, postJson } from './lib/api.js'
import { freePort } from './lib/net.js'
import { failedPhasesExitCode, phase, say, skip } from './lib/phases.js'
import { type BenchDatabase, createBenchDatabase, postgresUnreachable } from './lib/postgres.js'
import {
  benchFile,
  isAborting,
  onCleanup,
  runBenchmark,
  runCleanups,
  runClient,
  runCommand,
  type ServerProcess,
  startServerProcess,
  tsNode,
} from './lib/processes.js'
import { beginBenchmark, intEnv, PG_ADMIN_URL, PG_ENABLED, QUICK } from './lib/settings.js'
import { type Accounts, registerUsers } from './lib/sync-accounts.js'
import { report, type Scenario } from './lib/sync-report.js'
import { type Latencies, matchDeliveries, summarize } from './lib/sync-stats.js'
import {
  buildTessera,
  MANY_ACCOUNTS_ENV,
  sourceTessera,
  startTessera,
  type TesseraCommand,
} from './lib/tessera-server.js'
import { fmt, fmtSeconds } from './lib/timing.js'

const SETTINGS = {
  changes: intEnv('BENCH_SYNC_CHANGES', QUICK ? 100 : 1000),
  warmup: QUICK ? 10 : 50,
  /** Every 5th change of the latency scenarios is a 1 KiB upload, the others folder creations. */
  uploadEvery: 5,
  sockets: intEnv('BENCH_SYNC_SOCKETS', QUICK ? 100 : 1000),
  /** Fan-out writes in flight, and registrations in flight. */
  fanoutConcurrency: intEnv('BENCH_SYNC_FANOUT_CONCURRENCY', 8),
  registerConcurrency: 8,
  pg: PG_ENABLED,
  pgAdminUrl: PG_ADMIN_URL,
  amqpUrl: process.env.BENCH_AMQP_URL || 'amqp://guest:guest@127.0.0.1:5672',
}

let tesseraCommand: TesseraCommand = sourceTessera()
const startServer = (name: string, root: string, env: Record<string, string> = {}) =>
  startTessera({ command: tesseraCommand, name, root, env: { ...MANY_ACCOUNTS_ENV, ...env } })

async function register(server: ServerProcess, n: number, tag: string): Promise<Accounts> {
  const accounts = await registerUsers(server, n, tag, SETTINGS.registerConcurrency)
  if (n > 1)
    say(`${n} users registered in ${fmtSeconds(accounts.ms)} (${fmt(n / (accounts.ms / 1000), 0)}/s)`)
  return accounts
}

// ---------------------------------------------------------------------------------------
// One writer process against one listener process

interface Pair {
  writer: SyncWriterResult
  listener: SyncListenerResult
}

let pairs = 0

async function runPair(
  root: string,
  listen: { server: ServerProcess; tokens: string[]; expectPerSocket: number },
  write: { server: ServerProcess; tokens: string[]; mode: 'latency' | 'fanout'; count: number },
): Promise<Pair> {
  const n = ++pairs
  const listenTokens = path.join(root, `listen-tokens-${n}.json`)
  const writeTokens = path.join(root, `write-tokens-${n}.json`)
  const readyFile = path.join(root, `listener-ready-${n}.json`)
  await writeFile(listenTokens, JSON.stringify(listen.tokens))
  await writeFile(writeTokens, JSON.stringify(write.tokens))
  const listening = runClient<SyncListenerResult>('sync-listener.ts', {
    wsUrl: `${listen.server.url.replace(/^http/, 'ws')}${API_PREFIX}/sync/ws`,
    tokensFile: listenTokens,
    expectPerSocket: listen.expectPerSocket,
    readyFile,
    connectConcurrency: 50,
    timeoutMs: 10 * 60_000,
    idleMs: 30_000,
    settleMs: 500,
  })
  let failed: unknown
  listening.catch((error: unknown) => {
    failed = error
  })
  const deadline = Date.now() + 180_000
  while (!existsSync(readyFile)) {
    if (failed !== undefined) throw failed
    if (Date.now() > deadline) throw new Error('the listener did not connect its sockets in 180 s')
    await sleep(20)
  }
  say(`listener: ${listen.tokens.length} socket(s) on ${listen.server.name}, every hello received`)
  const writer = await runClient<SyncWriterResult>('sync-writer.ts', {
    base: write.server.url,
    tokensFile: writeTokens,
    mode: write.mode,
    count: write.count,
    warmup: SETTINGS.warmup,
    uploadEvery: SETTINGS.uploadEvery,
    concurrency: write.mode === 'latency' ? 1 : SETTINGS.fanoutConcurrency,
    tag: `${n}-${Date.now().toString(36)}`,
  })
  const listener = await listening
  say(
    `writer on ${write.server.name}: ${writer.writes.length} changes in ${fmtSeconds(writer.ms)} ` +
      `(${fmt(writer.writes.length / (writer.ms / 1000), 0)}/s); listener: ${listener.arrivals.length} events, ` +
      `ended "${listener.ended}"`,
  )
  return { writer, listener }
}

function sayLatencies(latencies: Map<string, Latencies>): void {
  for (const [kind, values] of latencies) {
    const a = summarize(values.sendToEvent)
    const b = summarize(values.responseToEvent)
    say(
      `${kind} (${a.n}): send→event p50 ${fmt(a.p50, 2)} p99 ${fmt(a.p99, 2)} max ${fmt(a.max, 1)} ms; ` +
        `response→event p50 ${fmt(b.p50, 2)} p99 ${fmt(b.p99, 2)} ms`,
    )
  }
}

/** One user: writes with its first token on `writeServer`, a second login's socket on `listenServer`. */
async function latencyScenario(
  label: string,
  root: string,
  writeServer: ServerProcess,
  listenServer: ServerProcess,
) {
  const a = await register(writeServer, 1, `latency-${pairs + 1}-${Date.now().toString(36)}`)
  const b = await postJson<{ token: string }>(
    listenServer.url,
    '/auth/login',
    { email: a.emails[0], password: PASSWORD },
    200,
  )
  const pair = await runPair(
    root,
    { server: listenServer, tokens: [b.token], expectPerSocket: SETTINGS.warmup + SETTINGS.changes },
    { server: writeServer, tokens: a.tokens, mode: 'latency', count: SETTINGS.changes },
  )
  const latencies = matchDeliveries(pair.writer, pair.listener, { socketOf: () => 0, userIds: a.userIds })
  sayLatencies(latencies)
  return { label, latencies, pair } satisfies Scenario
}

/** SOCKETS users, one socket each on `listenServer`; one folder creation per user on `writeServer`. */
async function fanoutScenario(
  label: string,
  root: string,
  writeServer: ServerProcess,
  listenServer: ServerProcess,
) {
  // The warm-up users (after the others) get a change each first, and no socket.
  const tag = `fanout-${pairs + 1}-${Date.now().toString(36)}`
  const users = await register(writeServer, SETTINGS.sockets + SETTINGS.warmup, tag)
  // The socket uses the registration's session too: the server sends a user's changes to all
  // of their sockets, whatever session made them, so a second login would change nothing.
  const pair = await runPair(
    root,
    { server: listenServer, tokens: users.tokens.slice(0, SETTINGS.sockets), expectPerSocket: 1 },
    { server: writeServer, tokens: users.tokens, mode: 'fanout', count: SETTINGS.sockets },
  )
  say(`listener connected ${pair.listener.sockets} sockets in ${fmtSeconds(pair.listener.connectMs)}`)
  const latencies = matchDeliveries(pair.writer, pair.listener, {
    socketOf: (user) => (user < SETTINGS.sockets ? user : -1),
    userIds: users.userIds,
  })
  say(`every one of the ${SETTINGS.sockets} sockets received exactly its own user's one change`)
  sayLatencies(latencies)
  return { label, latencies, pair } satisfies Scenario
}

// ---------------------------------------------------------------------------------------
// Main

/** Sockets need file descriptors: says whether this process may open enough. */
async function checkDescriptors(): Promise<void> {
  const limit = Number((await runCommand('sh', ['-c', 'ulimit -n'])).trim())
  if (Number.isFinite(limit) && limit < SETTINGS.sockets + 1024) {
    console.log(`  !!! ulimit -n is ${limit}: ${SETTINGS.sockets} sockets need more descriptors (raise it)`)
  } else say(`ulimit -n ${limit}: enough for ${SETTINGS.sockets} sockets per process`)
}

/** The floor: a bare ws echo server's round trip, and each way on the shared clock. */
function wsReference(root: string): Promise<WsRoundTripResult | undefined> {
  return phase(`reference: bare ws echo, ${SETTINGS.changes} round trips`, async () => {
    const port = await freePort()
    const { command, args } = tsNode(benchFile('servers/ws-echo-server.ts'))
    const server = await startServerProcess({
      name: 'ws-echo-server',
      command,
      args: [...args, JSON.stringify({ port })],
      port,
      logFile: path.join(root, 'ws-echo-server.log'),
    })
    const result = await runClient<WsRoundTripResult>('ws-roundtrip.ts', {
      url: `ws://127.0.0.1:${port}`,
      count: SETTINGS.changes,
      warmup: SETTINGS.warmup,
    }).finally(() => server.stop())
    const rt = summarize(result.roundTripMs)
    say(`${result.messageBytes} B messages: round trip p50 ${fmt(rt.p50, 3)} ms, p99 ${fmt(rt.p99, 3)} ms`)
    const [up, down] = [summarize(result.upMs), summarize(result.downMs)]
    say(`one way (shared clock): up p50 ${fmt(up.p50, 3)} ms, down p50 ${fmt(down.p50, 3)} ms`)
    const negative = [...result.upMs, ...result.downMs].filter((ms) => ms < -0.05).length
    if (negative > 0) throw new Error(`${negative} one-way legs are negative: the processes share no clock`)
    return result
  })
}

/** Why the RabbitMQ phases cannot run, or undefined when they can. */
async function brokerUnavailable(): Promise<string | undefined> {
  if (!SETTINGS.pg) return 'not run (BENCH_PG=0)'
  try {
    const probe = await amqpConnect(SETTINGS.amqpUrl, { timeout: 5000 })
    await probe.close()
  } catch (error) {
    return skip(
      'RabbitMQ reference and RabbitMQ phases',
      `RabbitMQ unreachable at ${SETTINGS.amqpUrl}: ${(error as Error).message}`,
    )
  }
  return undefined
}

/** The broker's floor: a persistent publish to a consumer on another connection. */
async function amqpReference(): Promise<AmqpLatencyResult | undefined> {
  const amqp = await phase(
    `reference: RabbitMQ publish → consume, ${SETTINGS.changes} persistent messages`,
    () =>
      runClient<AmqpLatencyResult>('amqp-latency.ts', {
        url: SETTINGS.amqpUrl,
        count: SETTINGS.changes,
        warmup: SETTINGS.warmup,
        messageBytes: 420,
      }),
  )
  if (amqp) {
    const c = summarize(amqp.consumeMs)
    say(`exchange ${amqp.exchange}: publish→consume p50 ${fmt(c.p50, 3)} ms, p99 ${fmt(c.p99, 3)} ms`)
  }
  return amqp
}

/** (a) and fan-out on one server: SQLite, in-process bus. */
async function embeddedScenarios(root: string, scenarios: Scenario[]): Promise<void> {
  const embedded = await phase('start Tessera, embedded (SQLite, in-process bus)', () =>
    startServer('tessera-embedded', root),
  )
  if (!embedded) return
  const add = (scenario: Scenario | undefined) => scenario && scenarios.push(scenario)
  add(
    await phase('(a) latency, embedded: device A writes, device B (another process) listens', () =>
      latencyScenario('(a) embedded', root, embedded, embedded),
    ),
  )
  add(
    await phase(`fan-out, embedded: ${SETTINGS.sockets} users x 1 socket`, () =>
      fanoutScenario('fan-out embedded', root, embedded, embedded),
    ),
  )
  await embedded.stop()
}

/** (b) and fan-out across two servers on one PostgreSQL database and RabbitMQ. */
async function brokerScenarios(root: string, db: BenchDatabase, scenarios: Scenario[]): Promise<void> {
  const env = { DATABASE_URL: db.url, AMQP_URL: SETTINGS.amqpUrl }
  // One after the other: the first one migrates the fresh database.
  const servers = await phase('start Tessera x 2 (PostgreSQL, RabbitMQ)', async () => [
    await startServer('tessera-node-1', root, env),
    await startServer('tessera-node-2', root, env),
  ])
  if (!servers) return
  const [one, two] = servers as [ServerProcess, ServerProcess]
  const add = (scenario: Scenario | undefined) => scenario && scenarios.push(scenario)
  add(
    await phase('(b) latency, RabbitMQ: writes on node 1, the socket on node 2', () =>
      latencyScenario('(b) RabbitMQ', root, one, two),
    ),
  )
  add(
    await phase(`fan-out, RabbitMQ: ${SETTINGS.sockets} users x 1 socket on node 2, writes on node 1`, () =>
      fanoutScenario('fan-out RabbitMQ', root, one, two),
    ),
  )
  await Promise.all([one.stop(), two.stop()])
}

/** The broker scenarios on a throwaway database; answers why they were skipped, if they were. */
async function postgresScenarios(root: string, scenarios: Scenario[]): Promise<string | undefined> {
  const unreachable = await postgresUnreachable(SETTINGS.pgAdminUrl)
  if (unreachable) return skip('PostgreSQL + RabbitMQ phases', unreachable)
  const db = await createBenchDatabase(SETTINGS.pgAdminUrl)
  onCleanup(() => db.drop())
  say(`database ${db.name}`)
  await brokerScenarios(root, db, scenarios)
  await db.drop()
  return undefined
}

async function main(): Promise<number> {
  const root = await beginBenchmark({
    title: 'Tessera sync benchmark',
    settings: [
      `latency: ${SETTINGS.changes} measured changes after ${SETTINGS.warmup} warm-up ones, one at a time, ` +
        `every ${SETTINGS.uploadEvery}th a 1 KiB upload; fan-out: ${SETTINGS.sockets} users x 1 socket, ` +
        `${SETTINGS.fanoutConcurrency} writes in flight`,
    ],
    tmpPrefix: 'tessera-bench-sync-',
  })
  await checkDescriptors()
  tesseraCommand = (await buildTessera()) ?? tesseraCommand
  say(
    `Tessera server: ${tesseraCommand.label} (HOST=127.0.0.1 LOG_LEVEL=warn, rate limits off, cheap argon2)`,
  )
  const ws = await wsReference(root)
  let brokerSkipped = await brokerUnavailable()
  const amqp = brokerSkipped ? undefined : await amqpReference()
  const scenarios: Scenario[] = []
  await embeddedScenarios(root, scenarios)
  if (!brokerSkipped) brokerSkipped = await postgresScenarios(root, scenarios)
  await runCleanups()
  if (isAborting()) return 1
  report({ settings: SETTINGS, ws, amqp, scenarios, brokerSkipped })
  return failedPhasesExitCode()
}

runBenchmark(main)

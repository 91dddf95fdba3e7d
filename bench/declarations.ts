// What one huge upload declaration costs everyone else.
//
// A user declares a 10 GiB file in 65,536 chunks (MAX_CHUNKS, 160 KiB each) while other clients
// keep asking for small things: /healthz, a folder listing, and a whole small upload (init, PUT,
// complete) by another user, and the server's collector runs every second (GC_INTERVAL_SECONDS=1),
// taking its exclusive guard each time. Printed: how long the declaration took, and the latency
// of the small requests while it ran against the same requests on the idle server just before.
// Run against this checkout and against the commit before the change (BENCH_BASELINE_REF), on
// SQLite and PostgreSQL, with plain undici clients.
//
//   npx tsx bench/declarations.ts
import { createHash, randomBytes } from 'node:crypto'
import { request } from 'undici'
import { API_PREFIX, register } from './lib/api.js'
import { BEFORE_INTEGRITY, compareWithBaseline, type Database, databaseEnv } from './lib/baseline.js'
import { failedPhasesExitCode } from './lib/phases.js'
import { runBenchmark } from './lib/processes.js'
import { beginBenchmark } from './lib/settings.js'
import { MANY_ACCOUNTS_ENV, startTessera, type TesseraCommand } from './lib/tessera-server.js'
import { fmt, latenciesUntil, percentile, table } from './lib/timing.js'

const CHUNKS = 65_536
const CHUNK_SIZE = 163_840
const BASELINE_REF = process.env.BENCH_BASELINE_REF || BEFORE_INTEGRITY
const IDLE_MS = 3_000

interface Probe {
  name: string
  run(): Promise<void>
}

/** Calls `probe` back to back until `stop` resolves; answers each call's latency in ms. */
const probeUntil = (probe: Probe, stop: Promise<unknown>): Promise<number[]> =>
  latenciesUntil(stop, 10, () => probe.run())

async function call(
  base: string,
  token: string,
  method: 'GET' | 'POST' | 'PUT',
  route: string,
  body?: unknown,
) {
  const headers: Record<string, string> = { authorization: `Bearer ${token}` }
  let payload: string | Buffer | undefined
  if (Buffer.isBuffer(body)) {
    payload = body
    headers['x-chunk-hash'] = createHash('sha256').update(body).digest('hex')
    headers['content-type'] = 'application/octet-stream'
  } else if (body !== undefined) {
    payload = JSON.stringify(body)
    headers['content-type'] = 'application/json'
  }
  const response = await request(`${base}${API_PREFIX}${route}`, { method, headers, body: payload })
  const text = await response.body.text()
  if (response.statusCode >= 300)
    throw new Error(`${method} ${route}: ${response.statusCode} ${text.slice(0, 300)}`)
  return text ? JSON.parse(text) : undefined
}

function probes(base: string, token: string): Probe[] {
  return [
    { name: 'GET /healthz', run: async () => void (await request(`${base}/healthz`)).body.text() },
    { name: 'GET /files (listing)', run: async () => void (await call(base, token, 'GET', '/files')) },
    {
      name: 'small upload (init, PUT, complete)',
      run: async () => {
        const bytes = randomBytes(1024)
        const hash = createHash('sha256').update(bytes).digest('hex')
        const session = await call(base, token, 'POST', '/upload/init', {
          filename: `small-${hash.slice(0, 12)}.bin`,
          size: bytes.length,
          chunkHashes: [hash],
        })
        await call(base, token, 'PUT', `/upload/${session.uploadId}/chunk/0`, bytes)
        await call(base, token, 'POST', `/upload/${session.uploadId}/complete`)
      },
    },
  ]
}

const summary = (values: number[]) =>
  values.length === 0
    ? 'n/a'
    : `${fmt(percentile(values, 50))} / ${fmt(percentile(values, 99))} / ${fmt(Math.max(...values))}`

/** The 10 GiB declaration, and how long the server takes to accept it. */
function declare(base: string, token: string): Promise<number> {
  const declaration = {
    filename: 'huge.bin',
    size: CHUNKS * CHUNK_SIZE,
    chunkHashes: Array.from({ length: CHUNKS }, () => randomBytes(32).toString('hex')),
    chunkSizes: Array.from({ length: CHUNKS }, () => CHUNK_SIZE),
  }
  const start = performance.now()
  return call(base, token, 'POST', '/upload/init', declaration).then(() => performance.now() - start)
}

async function measure(target: { label: string; command: TesseraCommand }, db: Database, work: string) {
  const env = { ...MANY_ACCOUNTS_ENV, DEFAULT_QUOTA_BYTES: String(64 * 1024 ** 4), GC_INTERVAL_SECONDS: '1' }
  const server = await startTessera({
    command: target.command,
    name: `${target.label}-${db}`.replace(/[^a-z0-9-]/gi, '_'),
    root: work,
    env: { ...env, ...(await databaseEnv(db)) },
  })
  const big = (await register(server.url, 'big@example.com')).token
  const small = (await register(server.url, 'small@example.com')).token
  const smallProbes = probes(server.url, small)

  const idleDone = new Promise((resolve) => setTimeout(resolve, IDLE_MS))
  const idle = await Promise.all(smallProbes.map((probe) => probeUntil(probe, idleDone)))
  const init = declare(server.url, big)
  const during = await Promise.all(smallProbes.map((probe) => probeUntil(probe, init)))
  const initMs = await init
  await server.stop()
  console.log(`${db}, ${target.label}: the declaration took ${fmt(initMs / 1000, 2)} s`)
  console.log(
    table(
      [
        ['', 'idle', 'during the declaration', 'requests during'],
        ...smallProbes.map((probe, i) => [
          probe.name,
          summary(idle[i] ?? []),
          summary(during[i] ?? []),
          String(during[i]?.length ?? 0),
        ]),
      ],
      ['l', 'r', 'r', 'r'],
    ),
  )
  console.log('')
}

async function main(): Promise<number> {
  const work = await beginBenchmark({
    title: 'Tessera declarations benchmark',
    settings: [
      `declaring ${CHUNKS} chunks of ${CHUNK_SIZE} bytes (10 GiB) while other clients make small requests`,
      'latency in ms: p50 / p99 / max, on the idle server and while the declaration runs',
    ],
    tmpPrefix: 'tessera-bench-declarations-',
  })
  await compareWithBaseline(BASELINE_REF, work, (target, db) => measure(target, db, work))
  return failedPhasesExitCode()
}

runBenchmark(main)

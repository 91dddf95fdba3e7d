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
import { execFileSync } from 'node:child_process'
import { createHash, randomBytes } from 'node:crypto'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { request } from 'undici'
import { API_PREFIX } from './lib/api.js'
import { BEFORE_INTEGRITY, buildBaseline } from './lib/baseline.js'
import { createBenchDatabase, DEFAULT_ADMIN_URL } from './lib/postgres.js'
import { installExitHandlers, onCleanup, REPO_ROOT, runCleanups } from './lib/processes.js'
import { postJson, startTessera } from './lib/sync-servers.js'
import { fmt, percentile, table } from './lib/timing.js'

const CHUNKS = 65_536
const CHUNK_SIZE = 163_840
const BASELINE_REF = process.env.BENCH_BASELINE_REF || BEFORE_INTEGRITY
const IDLE_MS = 3_000

installExitHandlers()

const runCommandSync = (command: string, args: string[]) =>
  execFileSync(command, args, { cwd: REPO_ROOT, stdio: ['ignore', 'ignore', 'inherit'] })

interface Probe {
  name: string
  run(): Promise<void>
}

/** Calls `probe` back to back until `stop` resolves; answers each call's latency in ms. */
async function probeUntil(probe: Probe, stop: Promise<unknown>): Promise<number[]> {
  const latencies: number[] = []
  let done = false
  void stop.finally(() => {
    done = true
  })
  while (!done) {
    const start = performance.now()
    await probe.run()
    latencies.push(performance.now() - start)
    await new Promise((resolve) => setTimeout(resolve, 10))
  }
  return latencies
}

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

async function measure(
  label: string,
  command: { command: string; args: string[] },
  db: 'sqlite' | 'postgres',
  work: string,
) {
  const env: Record<string, string> = {
    DEFAULT_QUOTA_BYTES: String(64 * 1024 ** 4),
    GC_INTERVAL_SECONDS: '1',
  }
  if (db === 'postgres') {
    const database = await createBenchDatabase(DEFAULT_ADMIN_URL)
    onCleanup(() => database.drop())
    env.DATABASE_URL = database.url
  }
  const server = await startTessera(command, `${label}-${db}`.replace(/[^a-z0-9-]/gi, '_'), work, env)
  const register = (who: string) =>
    postJson<{ token: string }>(
      server.url,
      '/auth/register',
      { email: `${who}@example.com`, password: 'benchmark password 1' },
      201,
    )
  const [big, small] = [(await register('big')).token, (await register('small')).token]
  const smallProbes = probes(server.url, small)

  const idleDone = new Promise((resolve) => setTimeout(resolve, IDLE_MS))
  const idle = await Promise.all(smallProbes.map((probe) => probeUntil(probe, idleDone)))

  const declaration = {
    filename: 'huge.bin',
    size: CHUNKS * CHUNK_SIZE,
    chunkHashes: Array.from({ length: CHUNKS }, () => randomBytes(32).toString('hex')),
    chunkSizes: Array.from({ length: CHUNKS }, () => CHUNK_SIZE),
  }
  const start = performance.now()
  const init = call(server.url, big, 'POST', '/upload/init', declaration).then(
    () => performance.now() - start,
  )
  const during = await Promise.all(smallProbes.map((probe) => probeUntil(probe, init)))
  const initMs = await init
  await server.stop()
  return {
    label,
    db,
    initMs,
    rows: smallProbes.map((probe, i) => ({ name: probe.name, idle: idle[i] ?? [], during: during[i] ?? [] })),
  }
}

async function main() {
  const work = await mkdtemp(path.join(tmpdir(), 'tessera-bench-declarations-'))
  onCleanup(() => rm(work, { recursive: true, force: true }))
  const baselineTree = await buildBaseline(BASELINE_REF, work)
  runCommandSync('npm', ['run', 'build', '--silent'])
  const built = (tree: string) => ({ command: process.execPath, args: [path.join(tree, 'dist/cli/main.js')] })
  const targets = [
    { label: 'this checkout', command: built(REPO_ROOT) },
    { label: `before (${BASELINE_REF})`, command: built(baselineTree) },
  ]
  console.log(
    `declaring ${CHUNKS} chunks of ${CHUNK_SIZE} bytes (10 GiB) while other clients make small requests`,
  )
  console.log('latency in ms: p50 / p99 / max, on the idle server and while the declaration runs\n')
  for (const db of ['sqlite', 'postgres'] as const) {
    for (const target of targets) {
      const result = await measure(target.label, target.command, db, work)
      console.log(`${db}, ${result.label}: the declaration took ${fmt(result.initMs / 1000, 2)} s`)
      console.log(
        table(
          [
            ['', 'idle', 'during the declaration', 'requests during'],
            ...result.rows.map((row) => [
              row.name,
              summary(row.idle),
              summary(row.during),
              String(row.during.length),
            ]),
          ],
          ['l', 'r', 'r', 'r'],
        ),
      )
      console.log('')
    }
  }
}

main()
  .catch((error) => {
    console.error(error)
    process.exitCode = 1
  })
  .finally(() => runCleanups())

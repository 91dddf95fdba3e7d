// What one hostile request costs everyone else: how long it holds the server's event loop.
//
// Each case sends one request a careless or hostile client could send (a declaration of the
// most chunks allowed, one of too many, one too large to read, a thousand proofs of one chunk,
// JSON nested a million deep) while a plain client keeps asking for /healthz. Printed per case:
// the answer's status and time, the longest event-loop stall the server itself saw meanwhile
// (prom-client's `nodejs_eventloop_lag_max_seconds`, which the scrape before the case resets),
// and the /healthz latencies. Run against this checkout and the commit before the hostile-client
// work (BENCH_BASELINE_REF), on SQLite and PostgreSQL, with undici.
//
//   npx tsx bench/hostile-requests.ts
import { execFileSync } from 'node:child_process'
import { createHash, createHmac, randomBytes } from 'node:crypto'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { request } from 'undici'
import { API_PREFIX } from './lib/api.js'
import { BEFORE_HOSTILE_CLIENTS, buildBaseline } from './lib/baseline.js'
import { createBenchDatabase, DEFAULT_ADMIN_URL } from './lib/postgres.js'
import { installExitHandlers, onCleanup, REPO_ROOT, runCleanups } from './lib/processes.js'
import { postJson, startTessera } from './lib/sync-servers.js'
import { fmt, percentile, table } from './lib/timing.js'

const BASELINE_REF = process.env.BENCH_BASELINE_REF || BEFORE_HOSTILE_CLIENTS
const CHUNK_SIZE = 4 * 1024 * 1024
const PROOFS = 1_000

installExitHandlers()

interface Answer {
  status: number
  text: string
}

async function send(
  base: string,
  token: string,
  method: 'POST' | 'PUT',
  route: string,
  body: string | Buffer,
  headers: Record<string, string> = {},
): Promise<Answer> {
  const response = await request(`${base}${API_PREFIX}${route}`, {
    method,
    headers: {
      authorization: `Bearer ${token}`,
      'content-type': typeof body === 'string' ? 'application/json' : 'application/octet-stream',
      ...headers,
    },
    body,
  }).catch((error: Error) => ({ statusCode: 0, body: { text: async () => error.message } }))
  return { status: response.statusCode, text: await response.body.text() }
}

const hashes = (count: number) => Array.from({ length: count }, () => randomBytes(32).toString('hex'))

/** The longest event-loop stall since the previous scrape, in ms. */
async function maxLagSinceLastScrape(base: string): Promise<number> {
  const text = await (await request(`${base}/metrics`)).body.text()
  const line = text.split('\n').find((l) => l.startsWith('nodejs_eventloop_lag_max_seconds'))
  return Number(line?.split(' ')[1]) * 1000
}

async function healthzUntil(base: string, stop: Promise<unknown>): Promise<number[]> {
  const latencies: number[] = []
  let done = false
  void stop.finally(() => {
    done = true
  })
  while (!done) {
    const start = performance.now()
    await (await request(`${base}/healthz`)).body.text()
    latencies.push(performance.now() - start)
    await new Promise((resolve) => setTimeout(resolve, 5))
  }
  return latencies
}

interface Case {
  name: string
  run(base: string, tokens: { owner: string; prover: string }): Promise<Answer>
}

const declare = (count: number, chunkSize = 160 * 1024) =>
  JSON.stringify({
    filename: `declared-${count}.bin`,
    size: count * chunkSize,
    chunkHashes: hashes(count),
    chunkSizes: Array.from({ length: count }, () => chunkSize),
  })

const CASES: Case[] = [
  {
    name: 'init, 65,536 chunks (the most allowed)',
    run: (base, { owner }) => send(base, owner, 'POST', '/upload/init', declare(65_536)),
  },
  {
    name: 'init, 120,000 chunks (too many)',
    run: (base, { owner }) =>
      send(
        base,
        owner,
        'POST',
        '/upload/init',
        JSON.stringify({ filename: 'many.bin', size: 120_000 * 1024, chunkHashes: hashes(120_000) }),
      ),
  },
  {
    name: 'init, 200,000 chunks (13 MiB of JSON)',
    run: (base, { owner }) => send(base, owner, 'POST', '/upload/init', declare(200_000)),
  },
  {
    name: 'JSON nested 1,000,000 deep',
    run: (base, { owner }) =>
      send(base, owner, 'POST', '/upload/init', `${'['.repeat(1_000_000)}${']'.repeat(1_000_000)}`),
  },
  {
    name: 'prove, one 4 MiB chunk at 1,000 indexes',
    async run(base, { owner, prover }) {
      // The owner stores the chunk; the prover declares a file of it repeated 1,000 times, is
      // asked to prove it holds it at every index, and answers with 1,000 proofs.
      const bytes = randomBytes(CHUNK_SIZE)
      const hash = createHash('sha256').update(bytes).digest('hex')
      const initOf = async (token: string, filename: string, times: number) =>
        JSON.parse(
          (
            await send(
              base,
              token,
              'POST',
              '/upload/init',
              JSON.stringify({ filename, size: times * bytes.length, chunkHashes: Array(times).fill(hash) }),
            )
          ).text,
        ) as { uploadId: string; proofNonce: string }
      const stored = await initOf(owner, 'stored.bin', 1)
      await send(base, owner, 'PUT', `/upload/${stored.uploadId}/chunk/0`, bytes, { 'x-chunk-hash': hash })
      await send(base, owner, 'POST', `/upload/${stored.uploadId}/complete`, '')
      const claimed = await initOf(prover, 'claimed.bin', PROOFS)
      // Right proofs: each one is checked (a wrong one ends the request at the first).
      const right = createHmac('sha256', Buffer.from(claimed.proofNonce, 'hex')).update(bytes).digest('hex')
      const proofs = Object.fromEntries(Array.from({ length: PROOFS }, (_, index) => [String(index), right]))
      return send(base, prover, 'POST', `/upload/${claimed.uploadId}/prove`, JSON.stringify({ proofs }))
    },
  },
]

const summary = (values: number[]) =>
  values.length === 0
    ? 'none answered'
    : `${fmt(percentile(values, 50))} / ${fmt(Math.max(...values))} (${values.length})`

async function measure(
  label: string,
  command: { command: string; args: string[] },
  db: string,
  work: string,
) {
  const env: Record<string, string> = { DEFAULT_QUOTA_BYTES: String(64 * 1024 ** 4) }
  if (db === 'postgres') {
    const database = await createBenchDatabase(DEFAULT_ADMIN_URL)
    onCleanup(() => database.drop())
    env.DATABASE_URL = database.url
  }
  const server = await startTessera(command, `${label}-${db}`.replace(/[^a-z0-9-]/gi, '_'), work, env)
  const register = async (who: string) =>
    (
      await postJson<{ token: string }>(
        server.url,
        '/auth/register',
        { email: `${who}@example.com`, password: 'benchmark password 1' },
        201,
      )
    ).token
  const tokens = { owner: await register('owner'), prover: await register('prover') }
  const rows: string[][] = []
  for (const hostile of CASES) {
    await maxLagSinceLastScrape(server.url)
    const start = performance.now()
    const answer = hostile.run(server.url, tokens).then((a) => ({ ...a, ms: performance.now() - start }))
    const latencies = await healthzUntil(server.url, answer)
    const { status, ms, text } = await answer
    const lag = await maxLagSinceLastScrape(server.url)
    const code = /"code":"(\w+)"/.exec(text)?.[1] ?? ''
    rows.push([hostile.name, `${status} ${code}`.trim(), fmt(ms), fmt(lag), summary(latencies)])
  }
  await server.stop()
  return rows
}

async function main() {
  const work = await mkdtemp(path.join(tmpdir(), 'tessera-bench-hostile-'))
  onCleanup(() => rm(work, { recursive: true, force: true }))
  const baselineTree = await buildBaseline(BASELINE_REF, work)
  execFileSync('npm', ['run', 'build', '--silent'], {
    cwd: REPO_ROOT,
    stdio: ['ignore', 'ignore', 'inherit'],
  })
  const built = (tree: string) => ({ command: process.execPath, args: [path.join(tree, 'dist/cli/main.js')] })
  const targets = [
    { label: 'this checkout', command: built(REPO_ROOT) },
    { label: `before (${BASELINE_REF})`, command: built(baselineTree) },
  ]
  console.log('one hostile request at a time; times in ms; event-loop stall as the server measured it\n')
  for (const db of ['sqlite', 'postgres']) {
    for (const target of targets) {
      const rows = await measure(target.label, target.command, db, work)
      console.log(`${db}, ${target.label}`)
      console.log(
        table(
          [
            ['request', 'answer', 'took', 'longest stall', '/healthz meanwhile: p50 / max (answered)'],
            ...rows,
          ],
          ['l', 'l', 'r', 'r', 'r'],
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

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
import { createHash, createHmac, randomBytes } from 'node:crypto'
import { request } from 'undici'
import { API_PREFIX, register } from './lib/api.js'
import { BEFORE_HOSTILE_CLIENTS, compareWithBaseline, type Database, databaseEnv } from './lib/baseline.js'
import { failedPhasesExitCode } from './lib/phases.js'
import { runBenchmark } from './lib/processes.js'
import { beginBenchmark } from './lib/settings.js'
import { MANY_ACCOUNTS_ENV, startTessera, type TesseraCommand } from './lib/tessera-server.js'
import { fmt, latenciesUntil, percentile, table } from './lib/timing.js'

const BASELINE_REF = process.env.BENCH_BASELINE_REF || BEFORE_HOSTILE_CLIENTS
const CHUNK_SIZE = 4 * 1024 * 1024
const PROOFS = 1_000

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

const healthzUntil = (base: string, stop: Promise<unknown>): Promise<number[]> =>
  latenciesUntil(stop, 5, async () => (await request(`${base}/healthz`)).body.text())

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

/** One hostile request, with /healthz asked meanwhile: a row of the table. */
async function measureCase(base: string, hostile: Case, tokens: { owner: string; prover: string }) {
  await maxLagSinceLastScrape(base)
  const start = performance.now()
  const answer = hostile.run(base, tokens).then((a) => ({ ...a, ms: performance.now() - start }))
  const latencies = await healthzUntil(base, answer)
  const { status, ms, text } = await answer
  const lag = await maxLagSinceLastScrape(base)
  const code = /"code":"(\w+)"/.exec(text)?.[1] ?? ''
  return [hostile.name, `${status} ${code}`.trim(), fmt(ms), fmt(lag), summary(latencies)]
}

async function measure(target: { label: string; command: TesseraCommand }, db: Database, work: string) {
  const server = await startTessera({
    command: target.command,
    name: `${target.label}-${db}`.replace(/[^a-z0-9-]/gi, '_'),
    root: work,
    env: { ...MANY_ACCOUNTS_ENV, DEFAULT_QUOTA_BYTES: String(64 * 1024 ** 4), ...(await databaseEnv(db)) },
  })
  const tokens = {
    owner: (await register(server.url, 'owner@example.com')).token,
    prover: (await register(server.url, 'prover@example.com')).token,
  }
  const rows: string[][] = []
  for (const hostile of CASES) rows.push(await measureCase(server.url, hostile, tokens))
  await server.stop()
  console.log(
    table(
      [['request', 'answer', 'took', 'longest stall', '/healthz meanwhile: p50 / max (answered)'], ...rows],
      ['l', 'l', 'r', 'r', 'r'],
    ),
  )
  console.log('')
}

async function main(): Promise<number> {
  const work = await beginBenchmark({
    title: 'Tessera hostile requests benchmark',
    settings: ['one hostile request at a time; times in ms; event-loop stall as the server measured it'],
    tmpPrefix: 'tessera-bench-hostile-',
  })
  await compareWithBaseline(BASELINE_REF, work, (target, db) => measure(target, db, work))
  return failedPhasesExitCode()
}

runBenchmark(main)

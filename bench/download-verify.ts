// What verifying every chunk's SHA-256 as it streams costs a download.
//
// The same file is uploaded to two servers built from this checkout and from a reference commit
// from before verification (BENCH_BASELINE_REF, default c88f481), each in its own process and data
// directory, and downloaded by curl (a client that is not the project's own), alternating
// between them, with a warm page cache. Also printed for scale: OpenSSL's SHA-256 of the same
// file (the hashing alone) and a bare Node server streaming it from disk.
//
//   npx tsx bench/download-verify.ts          (BENCH_SIZE_MIB=1024, BENCH_REPEAT=5)
import { execFile, execFileSync } from 'node:child_process'
import { createReadStream } from 'node:fs'
import { mkdtemp, open, rm, stat } from 'node:fs/promises'
import { createServer } from 'node:http'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { Agent } from 'undici'
import { Tessera } from './lib/api.js'
import { BEFORE_INTEGRITY, buildBaseline } from './lib/baseline.js'
import { intEnv } from './lib/env.js'
import { writeRandomFile } from './lib/files.js'
import { freePort } from './lib/net.js'
import {
  installExitHandlers,
  onCleanup,
  REPO_ROOT,
  runCleanups,
  startServerProcess,
} from './lib/processes.js'
import { fmtMiBs, fmtRatio, MiB, median, mibPerSecond, table } from './lib/timing.js'

const SIZE = intEnv('BENCH_SIZE_MIB', 1024) * MiB
const REPEAT = intEnv('BENCH_REPEAT', 5)
const BASELINE_REF = process.env.BENCH_BASELINE_REF || BEFORE_INTEGRITY
const CHUNK = 4 * MiB

installExitHandlers()

const run = (command: string, args: string[], cwd: string) =>
  execFileSync(command, args, { cwd, stdio: ['ignore', 'ignore', 'inherit'] })

async function startTessera(name: string, tree: string, work: string) {
  const port = await freePort()
  const dataDir = path.join(work, `${name}-data`)
  const server = await startServerProcess({
    name,
    command: process.execPath,
    args: [path.join(tree, 'dist/cli/main.js'), 'serve'],
    port,
    env: {
      ...process.env,
      PORT: String(port),
      HOST: '127.0.0.1',
      DATA_DIR: dataDir,
      LOG_LEVEL: 'warn',
      RATE_LIMIT_PER_MINUTE: '0',
      GC_INTERVAL_SECONDS: '0',
      DATABASE_URL: '',
    },
    logFile: path.join(work, `${name}.log`),
  })
  onCleanup(() => server.stop())
  return server
}

/** Registers, uploads `file` in 4 MiB chunks, answers the download URL and the bearer token. */
async function upload(base: string, file: string): Promise<{ url: string; token: string }> {
  const response = await fetch(`${base}/api/v1/auth/register`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ email: `bench-${Date.now()}@example.com`, password: 'correct horse battery' }),
  })
  const { token } = (await response.json()) as { token: string }
  const dispatcher = new Agent({ connections: 4 })
  const api = new Tessera(base, token, dispatcher)
  const handle = await open(file)
  const chunks: Buffer[] = []
  for (let offset = 0; offset < SIZE; offset += CHUNK) {
    const bytes = Buffer.alloc(Math.min(CHUNK, SIZE - offset))
    await handle.read(bytes, 0, bytes.length, offset)
    chunks.push(bytes)
  }
  await handle.close()
  const { createHash } = await import('node:crypto')
  const hashes = chunks.map((bytes) => createHash('sha256').update(bytes).digest('hex'))
  const session = await api.init({ filename: 'big.bin', size: SIZE, chunkHashes: hashes })
  for (const index of session.chunksNeeded) {
    const bytes = chunks[index] as Buffer
    await api.putChunk(session.uploadId, index, hashes[index] as string, bytes.length, bytes)
  }
  const { file: stored } = await api.complete(session.uploadId)
  await dispatcher.close()
  return { url: `${base}/api/v1/files/${stored.id}/download`, token }
}

/** One download by curl: its wall time in ms, checked to be the whole file. */
function curl(url: string, headers: string[] = []): Promise<number> {
  return new Promise((resolve, reject) => {
    execFile(
      'curl',
      ['-sS', '--fail', '-o', '/dev/null', '-w', '%{time_total} %{size_download}', ...headers, url],
      (error, stdout) => {
        if (error) return reject(error)
        const [seconds, bytes] = stdout.trim().split(' ').map(Number)
        if (bytes !== SIZE) return reject(new Error(`${url}: ${bytes} bytes, expected ${SIZE}`))
        resolve((seconds as number) * 1000)
      },
    )
  })
}

function opensslMs(file: string): number {
  const start = performance.now()
  execFileSync('openssl', ['dgst', '-sha256', file], { stdio: 'ignore' })
  return performance.now() - start
}

async function bareServer(file: string) {
  const port = await freePort()
  const server = createServer((_request, response) => {
    response.writeHead(200, { 'content-length': String(SIZE) })
    createReadStream(file, { highWaterMark: MiB }).pipe(response)
  })
  await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve))
  onCleanup(() => new Promise<void>((resolve) => server.close(() => resolve())))
  return `http://127.0.0.1:${port}/`
}

async function main() {
  const work = await mkdtemp(path.join(tmpdir(), 'tessera-bench-verify-'))
  onCleanup(() => rm(work, { recursive: true, force: true }))
  console.log(`download verification: ${SIZE / MiB} MiB in 4 MiB chunks, ${REPEAT} curl downloads each`)
  const file = path.join(work, 'big.bin')
  await writeRandomFile(file, SIZE)
  if ((await stat(file)).size !== SIZE) throw new Error('the test file is short')

  run('npm', ['run', 'build', '--silent'], REPO_ROOT)
  const baselineTree = await buildBaseline(BASELINE_REF, work)
  const current = await startTessera('verifying', REPO_ROOT, work)
  const baseline = await startTessera(`baseline-${BASELINE_REF}`, baselineTree, work)
  const targets = [
    { name: `Tessera, verifying (this checkout)`, ...(await upload(current.url, file)) },
    { name: `Tessera, not verifying (${BASELINE_REF})`, ...(await upload(baseline.url, file)) },
    { name: 'bare Node http + fs.createReadStream', url: await bareServer(file), token: '' },
  ]
  const times = new Map<string, number[]>(targets.map((target) => [target.name, []]))
  // One warm-up each, then alternate, so that drift on the machine hits all alike.
  for (let round = 0; round <= REPEAT; round++) {
    for (const target of targets) {
      const headers = target.token ? ['-H', `authorization: Bearer ${target.token}`] : []
      const ms = await curl(target.url, headers)
      if (round > 0) times.get(target.name)?.push(ms)
    }
  }
  opensslMs(file)
  const openssl = median(Array.from({ length: 3 }, () => opensslMs(file)))
  const rate = (name: string) => mibPerSecond(SIZE, median(times.get(name) ?? []))
  const [verifying, notVerifying, bare] = targets.map((target) => rate(target.name)) as [
    number,
    number,
    number,
  ]
  console.log(
    table(
      [
        ['', 'median', 'vs not verifying', 'vs bare'],
        ...targets.map((target) => {
          const r = rate(target.name)
          return [target.name, fmtMiBs(r), fmtRatio(r / notVerifying), fmtRatio(r / bare)]
        }),
        ['openssl dgst -sha256 (hashing alone, one core)', fmtMiBs(mibPerSecond(SIZE, openssl)), '', ''],
      ],
      ['l', 'r', 'r', 'r'],
    ),
  )
  console.log(
    `verification costs ${((1 - verifying / notVerifying) * 100).toFixed(1)}% of download throughput ` +
      `(${fmtMiBs(notVerifying)} -> ${fmtMiBs(verifying)})`,
  )
}

main()
  .catch((error) => {
    console.error(error)
    process.exitCode = 1
  })
  .finally(() => runCleanups())

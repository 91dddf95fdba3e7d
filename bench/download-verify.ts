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
import { open, stat } from 'node:fs/promises'
import { createServer } from 'node:http'
import path from 'node:path'
import { Agent } from 'undici'
import { register, sha256Hex, Tessera } from './lib/api.js'
import { BEFORE_INTEGRITY, buildContenders, type Contenders } from './lib/baseline.js'
import { writeRandomFile } from './lib/files.js'
import { freePort } from './lib/net.js'
import { failedPhasesExitCode, phase } from './lib/phases.js'
import { onCleanup, runBenchmark } from './lib/processes.js'
import { beginBenchmark, intEnv } from './lib/settings.js'
import { startTessera } from './lib/tessera-server.js'
import { fmtMiBs, fmtRatio, MiB, median, mibPerSecond, table } from './lib/timing.js'

const SIZE = intEnv('BENCH_SIZE_MIB', 1024) * MiB
const REPEAT = intEnv('BENCH_REPEAT', 5)
const BASELINE_REF = process.env.BENCH_BASELINE_REF || BEFORE_INTEGRITY
const CHUNK = 4 * MiB

/** Registers, uploads `file` in 4 MiB chunks, answers the download URL and the bearer token. */
async function upload(base: string, file: string): Promise<{ url: string; token: string }> {
  const { token } = await register(base, `bench-${Date.now()}@example.com`)
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
  const hashes = chunks.map((bytes) => sha256Hex(bytes))
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

interface Target {
  name: string
  url: string
  token: string
}

/** This checkout's server and the baseline's, each with the file uploaded, and the bare server. */
async function startTargets(contenders: Contenders, file: string, work: string): Promise<Target[]> {
  const env = { GC_INTERVAL_SECONDS: '0' }
  const current = await startTessera({ command: contenders.current, name: 'verifying', root: work, env })
  const baseline = await startTessera({
    command: contenders.baseline,
    name: `baseline-${BASELINE_REF}`,
    root: work,
    env,
  })
  return [
    { name: `Tessera, verifying (this checkout)`, ...(await upload(current.url, file)) },
    { name: `Tessera, not verifying (${BASELINE_REF})`, ...(await upload(baseline.url, file)) },
    { name: 'bare Node http + fs.createReadStream', url: await bareServer(file), token: '' },
  ]
}

/** One warm-up each, then alternate, so that drift on the machine hits all alike. */
async function downloads(targets: readonly Target[]): Promise<Map<string, number[]>> {
  const times = new Map<string, number[]>(targets.map((target) => [target.name, []]))
  for (let round = 0; round <= REPEAT; round++) {
    for (const target of targets) {
      const headers = target.token ? ['-H', `authorization: Bearer ${target.token}`] : []
      const ms = await curl(target.url, headers)
      if (round > 0) times.get(target.name)?.push(ms)
    }
  }
  return times
}

function report(targets: readonly Target[], times: Map<string, number[]>, openssl: number): void {
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

async function main(): Promise<number> {
  const work = await beginBenchmark({
    title: 'Tessera download verification benchmark',
    settings: [`download verification: ${SIZE / MiB} MiB in 4 MiB chunks, ${REPEAT} curl downloads each`],
    tmpPrefix: 'tessera-bench-verify-',
  })
  const file = path.join(work, 'big.bin')
  await phase('generate a random file', async () => {
    await writeRandomFile(file, SIZE)
    if ((await stat(file)).size !== SIZE) throw new Error('the test file is short')
  })
  const contenders = await buildContenders(BASELINE_REF, work)
  const targets =
    contenders && (await phase('start the servers, upload', () => startTargets(contenders, file, work)))
  if (!targets) return failedPhasesExitCode()
  const times = await phase(`${REPEAT} curl downloads each, alternating`, () => downloads(targets))
  if (!times) return failedPhasesExitCode()
  opensslMs(file)
  const openssl = median(Array.from({ length: 3 }, () => opensslMs(file)))
  report(targets, times, openssl)
  return failedPhasesExitCode()
}

runBenchmark(main)

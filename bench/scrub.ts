// `npm run bench:scrub` (`npx tsx bench/scrub.ts`): scrub throughput against the cost of simply
// reading the same bytes and hashing them with OpenSSL. Goal: scrub >= 0.8x openssl. A benchmark,
// not a test: a missed goal prints MISS and never fails the process (a scrub that reports a
// problem, or a phase that cannot run, exits 1).
//
// The store is built through the services (register, upload sessions of 4 MiB random chunks),
// so the scrub finds a consistent store and must report it clean. Then, with the page cache warm
// (every file read once first), alternately: the reference, `openssl dgst -sha256` over every
// chunk file in one process (reading plus OpenSSL's SHA-256, as the goal says); the same split
// into <scrub concurrency> shares, one openssl process each, all at once (every core busy:
// informational); and Tessera's `Scrubber.run()` (fraction 1: every chunk, plus the walk for
// unknown bytes and the reference checks), which hashes on worker threads.
//
//   BENCH_QUICK=1               smoke run: 256 MiB
//   BENCH_SCRUB_MIB=N           bytes to store and scrub (default 1024; 256 with BENCH_QUICK=1)
//   BENCH_SCRUB_REPEAT=N        runs of each, alternating (default 3)
//   BENCH_SCRUB_CONCURRENCY=N   the scrub's concurrency, and openssl's processes (default: the scrubber's)
//   BENCH_KEEP_TMP=1            keep the temp directory
import { spawn } from 'node:child_process'
import { createHash, randomFillSync } from 'node:crypto'
import { open, readdir } from 'node:fs/promises'
import path from 'node:path'
import { Readable } from 'node:stream'
import { DiskBlobStore } from '../src/adapters/disk/disk-blob-store.js'
import { LocalEventBus } from '../src/adapters/local-bus/local-event-bus.js'
import { openSqliteMetadataStore } from '../src/adapters/sqlite/sqlite-metadata-store.js'
import { buildServices } from '../src/composition.js'
import { loadConfig } from '../src/config.js'
import { parseBlobName } from '../src/domain/blob-key.js'
import { systemClock } from '../src/domain/clock.js'
import type { MetadataStore } from '../src/ports/metadata-store.js'
import type { ScrubReport } from '../src/services/scrubber.js'
import { failedPhasesExitCode, phase, say } from './lib/phases.js'
import { isAborting, onCleanup, runBenchmark, runCleanups } from './lib/processes.js'
import { beginBenchmark, intEnv, QUICK } from './lib/settings.js'
import { fmt, fmtMiBs, fmtRatio, fmtSeconds, MiB, median, mibPerSecond, now, table } from './lib/timing.js'

const SIZE_MIB = intEnv('BENCH_SCRUB_MIB', QUICK ? 256 : 1024)
const REPEAT = intEnv('BENCH_SCRUB_REPEAT', 3)
const CONCURRENCY = intEnv('BENCH_SCRUB_CONCURRENCY', 4)
const CHUNK_SIZE = 4 * MiB
/** Chunks per uploaded file (64 MiB files). */
const CHUNKS_PER_FILE = 16
const GOAL = 0.8

// ---------------------------------------------------------------------------------------
// The store

interface Store {
  meta: MetadataStore
  blobs: DiskBlobStore
  services: ReturnType<typeof buildServices>
  /** Every chunk's file, and its hash. */
  chunks: { hash: string; file: string }[]
  bytes: number
}

async function buildStore(root: string): Promise<Store> {
  const meta = await openSqliteMetadataStore({ file: path.join(root, 'tessera.db') })
  onCleanup(() => meta.close())
  const blobs = new DiskBlobStore({ root: path.join(root, 'chunks') })
  await blobs.init()
  const config = loadConfig({
    DEFAULT_QUOTA_BYTES: String(2 ** 50),
    ARGON2_MEMORY_KIB: '1024',
    ARGON2_PASSES: '1',
  })
  const bus = new LocalEventBus({ nodeId: 'bench-scrub' })
  const services = buildServices({ meta, blobs, bus }, systemClock, config)
  const { user } = await services.auth.register({
    email: 'scrub@example.com',
    password: 'benchmark password 1',
  })
  const totalChunks = Math.ceil((SIZE_MIB * MiB) / CHUNK_SIZE)
  const chunks: Store['chunks'] = []
  const buffers = Array.from({ length: CHUNKS_PER_FILE }, () => Buffer.allocUnsafe(CHUNK_SIZE))
  let bytes = 0
  for (let file = 0; chunks.length < totalChunks; file++) {
    const sizes = Array.from({ length: Math.min(CHUNKS_PER_FILE, totalChunks - chunks.length) }, (_, i) =>
      Math.min(CHUNK_SIZE, SIZE_MIB * MiB - (chunks.length + i) * CHUNK_SIZE),
    )
    const hashes = sizes.map((size, i) => {
      const buffer = buffers[i]!.subarray(0, size)
      randomFillSync(buffer)
      return createHash('sha256').update(buffer).digest('hex')
    })
    const size = sizes.reduce((sum, n) => sum + n, 0)
    const session = await services.uploads.init(user, {
      filename: `random ${file}.bin`,
      size,
      chunkHashes: hashes,
    })
    for (const [index, hash] of hashes.entries()) {
      const body = Readable.from([buffers[index]!.subarray(0, sizes[index])])
      await services.uploads.putChunk({
        user,
        uploadId: session.uploadId,
        index,
        hash,
        contentLength: sizes[index],
        body,
      })
      chunks.push({ hash, file: await copyOf(blobs, hash) })
    }
    await services.uploads.complete(user, session.uploadId)
    bytes += size
  }
  return { meta, blobs, services, chunks, bytes }
}

/** The file of the one copy of `hash` (its name is `<hash>.<generation>`). */
async function copyOf(blobs: DiskBlobStore, hash: string): Promise<string> {
  const dir = path.join(blobs.root, hash.slice(0, 2), hash.slice(2, 4))
  const names = (await readdir(dir)).filter((name) => parseBlobName(name)?.hash === hash)
  if (names.length !== 1) throw new Error(`${names.length} copies of chunk ${hash} in ${dir}`)
  return path.join(dir, names[0]!)
}

/** Reads every chunk file once, so that both contenders find the same warm page cache. */
async function warm(files: readonly string[]): Promise<void> {
  const buffer = Buffer.allocUnsafe(CHUNK_SIZE)
  for (const file of files) {
    const handle = await open(file, 'r')
    try {
      while ((await handle.read(buffer, 0, buffer.length)).bytesRead > 0) {}
    } finally {
      await handle.close()
    }
  }
}

// ---------------------------------------------------------------------------------------
// The contenders

/**
 * `openssl dgst -sha256` over the files, split into `parallel` shares, one openssl process per
 * share, all at once (what `xargs -P` does, but each process with its own stdout: through one
 * shared pipe their lines interleave). Checks every digest against the file's name.
 */
async function openssl(files: readonly string[], parallel: number): Promise<number> {
  const share = Math.ceil(files.length / parallel)
  const shares = Array.from({ length: parallel }, (_, i) => files.slice(i * share, (i + 1) * share)).filter(
    (part) => part.length > 0,
  )
  const start = now()
  const outputs = await Promise.all(shares.map((part) => runOpenssl(part)))
  const ms = now() - start
  let checked = 0
  for (const line of outputs.join('').trim().split('\n')) {
    const match = /^SHA2?-?256\((.*)\)= ([0-9a-f]{64})$/.exec(line)
    if (!match || parseBlobName(path.basename(match[1]!))?.hash !== match[2])
      throw new Error(`openssl: unexpected line "${line}"`)
    checked++
  }
  if (checked !== files.length) throw new Error(`openssl hashed ${checked} of ${files.length} files`)
  return ms
}

async function runOpenssl(files: readonly string[]): Promise<string> {
  const child = spawn('openssl', ['dgst', '-sha256', ...files], { stdio: ['ignore', 'pipe', 'pipe'] })
  let stdout = ''
  let stderr = ''
  child.stdout.setEncoding('utf8').on('data', (text: string) => {
    stdout += text
  })
  child.stderr.setEncoding('utf8').on('data', (text: string) => {
    stderr += text
  })
  const code = await new Promise<number | null>((resolve, reject) => {
    child.once('error', reject)
    child.once('close', resolve)
  })
  if (code !== 0) throw new Error(`openssl dgst failed (exit ${code}): ${stderr.trim()}`)
  return stdout.endsWith('\n') ? stdout : `${stdout}\n`
}

async function scrub(store: Store): Promise<{ ms: number; report: ScrubReport }> {
  const start = now()
  const report = await store.services.scrubber.run({ fraction: 1, concurrency: CONCURRENCY })
  const ms = now() - start
  if (!report.clean || report.checked !== store.chunks.length || report.bytes !== store.bytes) {
    throw new Error(
      `the scrub checked ${report.checked} chunks (${report.bytes} bytes) of ${store.chunks.length} ` +
        `(${store.bytes}) and says ${report.clean ? 'clean' : `not clean: ${JSON.stringify(report).slice(0, 500)}`}`,
    )
  }
  return { ms, report }
}

// ---------------------------------------------------------------------------------------
// Main

interface Times {
  /** openssl in one process (the goal's reference), in CONCURRENCY processes, and the scrub. */
  single: number[]
  openssl: number[]
  scrub: number[]
}

/** One run of each contender, in the order given: its time, and a line saying it. */
async function runOnce(
  store: Store,
  files: readonly string[],
  order: readonly (keyof Times)[],
  times: Times,
) {
  for (const who of order) {
    if (who === 'single') {
      const ms = await openssl(files, 1)
      times.single.push(ms)
      say(`openssl, one process: ${fmtSeconds(ms)}, ${fmtMiBs(mibPerSecond(store.bytes, ms))}`)
    } else if (who === 'openssl') {
      const ms = await openssl(files, CONCURRENCY)
      times.openssl.push(ms)
      say(`openssl, ${CONCURRENCY} processes: ${fmtSeconds(ms)}, ${fmtMiBs(mibPerSecond(store.bytes, ms))}`)
    } else {
      const { ms, report } = await scrub(store)
      times.scrub.push(ms)
      say(
        `Scrubber.run(): ${fmtSeconds(ms)}, ${fmtMiBs(mibPerSecond(store.bytes, ms))} ` +
          `(${report.checked} chunks, clean)`,
      )
    }
  }
}

/** REPEAT runs of each, alternating the order so that neither side always goes first. */
async function measure(store: Store): Promise<Times> {
  const files = store.chunks.map((chunk) => chunk.file)
  const times: Times = { single: [], openssl: [], scrub: [] }
  for (let run = 0; run < REPEAT && !isAborting(); run++) {
    const order =
      run % 2 === 0 ? (['single', 'openssl', 'scrub'] as const) : (['scrub', 'openssl', 'single'] as const)
    await runOnce(store, files, order, times)
  }
  return times
}

function report(store: Store, times: Times): void {
  const rate = (ms: number) => mibPerSecond(store.bytes, ms)
  const best = (ms: number[]) => rate(Math.min(...ms))
  const middle = (ms: number[]) => rate(median(ms))
  const ratio = middle(times.scrub) / middle(times.single)
  const parallelRatio = middle(times.scrub) / middle(times.openssl)
  console.log(`\n${'='.repeat(110)}\nSCRUB FIGURES (${fmt(store.bytes / MiB, 0)} MiB, page cache warm)\n`)
  const row = (label: string, ms: number[]) => [label, fmtMiBs(best(ms)), fmtMiBs(middle(ms))]
  console.log(
    table(
      [
        ['measurement', 'best', `median of ${REPEAT}`],
        row('openssl dgst -sha256, one process (the goal’s reference)', times.single),
        row(`openssl dgst -sha256, ${CONCURRENCY} processes (every core)`, times.openssl),
        row(`Tessera Scrubber.run(), concurrency ${CONCURRENCY}`, times.scrub),
      ],
      ['l', 'r', 'r'],
    ),
  )
  console.log(
    `\nscrub / reading + OpenSSL SHA-256 (one process): ${fmtRatio(ratio)} (median), ` +
      `${fmtRatio(best(times.scrub) / best(times.single))} (best); goal >= ${GOAL}x: ${ratio >= GOAL ? 'OK' : 'MISS'}`,
  )
  console.log(
    `scrub / ${CONCURRENCY} openssl processes on every core (informational): ${fmtRatio(parallelRatio)} (median)`,
  )
}

async function main(): Promise<number> {
  const root = await beginBenchmark({
    title: 'Tessera scrub benchmark',
    machine: `UV_THREADPOOL_SIZE=${process.env.UV_THREADPOOL_SIZE ?? '(default 4)'}`,
    settings: [
      `${SIZE_MIB} MiB of random 4 MiB chunks in a disk blob store, SQLite metadata; ` +
        `scrub concurrency ${CONCURRENCY}, openssl in ${CONCURRENCY} processes`,
    ],
    tmpPrefix: 'tessera-bench-scrub-',
  })
  const store = await phase('build the store through the services (register, upload, complete)', async () => {
    const built = await buildStore(root)
    say(`${built.chunks.length} chunks, ${fmt(built.bytes / MiB, 0)} MiB`)
    return built
  })
  if (!store) return failedPhasesExitCode()
  await phase('warm the page cache (read every chunk file once)', () =>
    warm(store.chunks.map((chunk) => chunk.file)),
  )
  const times = await phase(`${REPEAT} runs each, alternating`, () => measure(store))
  await runCleanups()
  if (isAborting()) return 1
  if (times) report(store, times)
  return failedPhasesExitCode()
}

runBenchmark(main)

// `npm run bench`: Tessera against the limits and baselines of the performance goals, each
// measured in this run on the same bytes. A benchmark, not a test: a missed goal is printed
// as MISS and never fails the process (a phase that cannot run at all exits 1 at the end).
//
//   BENCH_SIZE_MIB=1024   size of the big random file (default 1024; 64 with BENCH_QUICK=1)
//   BENCH_QUICK=1         smoke run: small file, short windows, single runs
//   BENCH_PG_URL=...      PostgreSQL admin URL (default postgres://postgres@127.0.0.1:5432/postgres)
//   BENCH_SKIP_BUILD=1    use the existing dist/ instead of running `npm run build`
//   BENCH_KEEP_TMP=1      keep the temp directory (server logs) after the run
import { existsSync, rmSync } from 'node:fs'
import { mkdir, mkdtemp, rm, stat, writeFile } from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { Agent, request } from 'undici'
import type { DownloadResult } from './clients/download.js'
import type { LoadResult } from './clients/load.js'
import type { SmallUploadsResult } from './clients/small-uploads.js'
import type { TesseraUploadResult } from './clients/tessera-upload.js'
import type { TusUploadResult } from './clients/tus-upload.js'
import { API_PREFIX, forEachConcurrently, sha256Hex, Tessera } from './lib/api.js'
import { intEnv } from './lib/env.js'
import { writeRandomFile } from './lib/files.js'
import { freePort } from './lib/net.js'
import { createBenchDatabase, DEFAULT_ADMIN_URL } from './lib/postgres.js'
import {
  abortExitCode,
  benchFile,
  failedPhasesExitCode,
  installExitHandlers,
  isAborting,
  onCleanup,
  onExit,
  REPO_ROOT,
  runBenchmark,
  runCleanups,
  runClient,
  runCommand,
  type ServerProcess,
  startServerProcess,
  tsNode,
} from './lib/processes.js'
import { type RssReport, RssSampler, readMemory } from './lib/rss.js'
import { benchServerEnv } from './lib/sync-servers.js'
import {
  fmt,
  fmtMiB,
  fmtMiBs,
  fmtRatio,
  fmtSeconds,
  MiB,
  median,
  mibPerSecond,
  now,
  table,
  timed,
} from './lib/timing.js'

// ---------------------------------------------------------------------------------------
// Settings

const QUICK = process.env.BENCH_QUICK === '1'
const SIZE_MIB = intEnv('BENCH_SIZE_MIB', QUICK ? 64 : 1024)
const SETTINGS = {
  sizeBytes: SIZE_MIB * MiB,
  /** Peak RSS is measured on these sizes (API goal: 256 MiB and 1 GiB). */
  rssSizesMiB: [...new Set([Math.min(256, SIZE_MIB), SIZE_MIB])],
  chunkSize: 4 * MiB,
  uploadConcurrency: 8,
  downloadRepeat: QUICK ? 1 : 3,
  smallFileBytes: 1024,
  smallConcurrency: 16,
  smallWarmupMs: QUICK ? 500 : 2000,
  smallDurationMs: QUICK ? 2000 : 10_000,
  listingItems: 100,
  listingSubfolders: 10,
  loadConcurrency: 32,
  loadWarmupMs: QUICK ? 500 : 2000,
  loadDurationMs: QUICK ? 2000 : 10_000,
  pgAdminUrl: process.env.BENCH_PG_URL || DEFAULT_ADMIN_URL,
}

const GOALS = {
  uploadVsLimit: 0.8,
  uploadVsTus: 1.0,
  downloadVsBare: 0.8,
  peakRssMiB: 200,
  smallSqlitePerSecond: 300,
  listingVsBare: 0.3,
}

// ---------------------------------------------------------------------------------------
// Phases: each one's failure is reported and the others still run.

const failures: string[] = []

function say(line: string): void {
  console.log(`  · ${line}`)
}

async function phase<T>(name: string, work: () => Promise<T>): Promise<T | undefined> {
  if (isAborting()) return undefined
  console.log(`\n▸ ${name}`)
  const start = now()
  try {
    const value = await work()
    say(`done in ${fmtSeconds(now() - start)}`)
    return value
  } catch (error) {
    if (isAborting()) return undefined
    const message = (error as Error).message
    failures.push(`${name}: ${message.split('\n')[0]}`)
    console.log(`  ✗ ${name} FAILED:\n${message.replace(/^/gm, '    ')}`)
    return undefined
  }
}

// ---------------------------------------------------------------------------------------
// Servers

interface TesseraServer {
  process: ServerProcess
  api: Tessera
  token: string
  /** VmRSS once listening, before any request; and after the registration (argon2id). */
  idleRss: number
  registeredRss: number
  close(): Promise<void>
}

let tesseraCommand: { command: string; args: string[]; label: string } = {
  ...tsNode(path.join(REPO_ROOT, 'src/cli/main.ts')),
  label: 'node --import tsx src/cli/main.ts serve',
}

async function startTessera(
  name: string,
  root: string,
  extraEnv: Record<string, string> = {},
): Promise<TesseraServer> {
  const dataDir = path.join(root, `${name}-data`)
  await mkdir(dataDir, { recursive: true })
  const port = await freePort()
  const server = await startServerProcess({
    name,
    command: tesseraCommand.command,
    args: [...tesseraCommand.args, 'serve'],
    port,
    env: benchServerEnv({ DATA_DIR: dataDir, PORT: String(port), ...extraEnv }),
    logFile: path.join(root, `${name}.log`),
  })
  const idleRss = readMemory(server.pid)?.rss ?? Number.NaN
  // One registration per server: the password hash (argon2id) is deliberately slow.
  const response = await request(`${server.url}${API_PREFIX}/auth/register`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ email: `bench-${Date.now()}@example.com`, password: 'benchmark password 1' }),
  })
  const text = await response.body.text()
  if (response.statusCode !== 201) {
    await server.stop()
    throw new Error(`register on ${name}: ${response.statusCode} ${text}`)
  }
  const { token } = JSON.parse(text) as { token: string }
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

async function startBareServer(
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

/** Time a client may take to move `bytes` `repeat` times: a minute, plus 2 MiB/s (a hang, not slowness). */
const transferTimeout = (bytes: number, repeat = 1) => 60_000 + (repeat * bytes * 1000) / (2 * MiB)
const windowTimeout = (warmupMs: number, durationMs: number) => warmupMs + durationMs + 60_000

/** Flushes dirty pages left by an earlier phase, so they are not written back during the next. */
const syncDisks = () => runCommand('sync', [])

// ---------------------------------------------------------------------------------------
// Measurements

interface Limit {
  opensslMs: number
  ddMs: number
}

async function measureLimit(file: string, root: string): Promise<Limit> {
  await syncDisks()
  const openssl = await timed(() => runCommand('openssl', ['dgst', '-sha256', file]))
  say(
    `openssl dgst -sha256: ${fmtSeconds(openssl.ms)}, ${fmtMiBs(mibPerSecond(SETTINGS.sizeBytes, openssl.ms))}`,
  )
  const copy = path.join(root, 'dd-copy.bin')
  await syncDisks()
  const dd = await timed(() => runCommand('dd', [`if=${file}`, `of=${copy}`, 'bs=4M', 'conv=fsync']))
  say(`dd bs=4M conv=fsync: ${fmtSeconds(dd.ms)}, ${fmtMiBs(mibPerSecond(SETTINGS.sizeBytes, dd.ms))}`)
  await rm(copy, { force: true })
  await syncDisks()
  return { opensslMs: openssl.ms, ddMs: dd.ms }
}

interface BigUpload {
  upload: TesseraUploadResult
  /** Download times through Tessera and (when a bare server was given) from the bare server. */
  tesseraMs: number[]
  bareMs: number[]
  rss: RssReport
}

/**
 * Uploads one file to Tessera, then downloads it `repeat` times, alternating with downloads of
 * the same bytes from the bare file server when one is given (T B, B T, T B…: neither side
 * always goes first). The Tessera server's memory is sampled from the upload's start to the
 * last download.
 */
async function tesseraUploadDownload(
  server: TesseraServer,
  file: string,
  repeat: number,
  bare?: ServerProcess,
): Promise<BigUpload> {
  const { size } = await stat(file)
  await syncDisks()
  const sampler = new RssSampler(server.process.pid)
  sampler.start()
  try {
    const upload = await runClient<TesseraUploadResult>(
      'tessera-upload.ts',
      {
        base: server.process.url,
        token: server.token,
        file,
        chunkSize: SETTINGS.chunkSize,
        concurrency: SETTINGS.uploadConcurrency,
      },
      transferTimeout(size),
    )
    if (upload.chunksUploaded !== upload.totalChunks) {
      throw new Error(
        `only ${upload.chunksUploaded} of ${upload.totalChunks} chunks were uploaded (deduplicated?)`,
      )
    }
    say(
      `upload ${fmtMiB(size)}: hashing ${fmtSeconds(upload.hashMs)}, session ${fmtSeconds(upload.sessionMs)} ` +
        `(init ${fmt(upload.initMs)} ms, chunks ${fmtSeconds(upload.chunksMs)}, complete ${fmt(upload.completeMs)} ms)`,
    )
    const downloadOnce = async (url: string, headers?: Record<string, string>) => {
      const result = await runClient<DownloadResult>(
        'download.ts',
        { url, headers, expectBytes: size, repeat: 1 },
        transferTimeout(size),
      )
      return result.ms[0]!
    }
    const tessera = () =>
      downloadOnce(`${server.process.url}${API_PREFIX}/files/${upload.fileId}/download`, {
        authorization: `Bearer ${server.token}`,
      })
    const tesseraMs: number[] = []
    const bareMs: number[] = []
    for (let run = 0; run < repeat; run++) {
      if (bare && run % 2 === 1) bareMs.push(await downloadOnce(`${bare.url}/`))
      tesseraMs.push(await tessera())
      if (bare && run % 2 === 0) bareMs.push(await downloadOnce(`${bare.url}/`))
    }
    say(`Tessera download ${fmtMiB(size)}: ${tesseraMs.map((ms) => fmtSeconds(ms)).join(', ')}`)
    if (bare) say(`bare http download ${fmtMiB(size)}: ${bareMs.map((ms) => fmtSeconds(ms)).join(', ')}`)
    const rss = sampler.stop()
    say(`Tessera peak RSS ${fmtMiB(rss.kernelPeak)} (VmHWM), sampled max VmRSS ${fmtMiB(rss.sampledPeak)}`)
    return { upload, tesseraMs, bareMs, rss }
  } finally {
    sampler.stop()
  }
}

async function smallUploads(server: TesseraServer, folderName: string): Promise<SmallUploadsResult> {
  const folder = await server.api.json<{ id: string }>('POST', '/folders', { name: folderName }, 201)
  const result = await runClient<SmallUploadsResult>(
    'small-uploads.ts',
    {
      base: server.process.url,
      token: server.token,
      folderId: folder.id,
      size: SETTINGS.smallFileBytes,
      concurrency: SETTINGS.smallConcurrency,
      warmupMs: SETTINGS.smallWarmupMs,
      durationMs: SETTINGS.smallDurationMs,
    },
    windowTimeout(SETTINGS.smallWarmupMs, SETTINGS.smallDurationMs),
  )
  say(
    `${result.uploads} uploads in ${result.seconds} s: ${fmt(result.perSecond)}/s ` +
      `(p50 ${fmt(result.p50Ms)} ms, p99 ${fmt(result.p99Ms)} ms)`,
  )
  return result
}

/** Fills a folder with `listingItems` entries (some subfolders, the rest 1 KiB files). */
async function prepareListing(server: TesseraServer): Promise<{ url: string; body: string }> {
  const api = server.api
  const folder = await api.json<{ id: string }>('POST', '/folders', { name: 'listing-100' }, 201)
  for (let i = 0; i < SETTINGS.listingSubfolders; i++) {
    await api.json(
      'POST',
      '/folders',
      { name: `folder ${String(i).padStart(2, '0')}`, parentId: folder.id },
      201,
    )
  }
  await forEachConcurrently(SETTINGS.listingItems - SETTINGS.listingSubfolders, 8, async (i) => {
    const bytes = Buffer.from(`listing file ${i} ${Math.random()}`.padEnd(1024, '.'))
    const hash = sha256Hex(bytes)
    const session = await api.init({
      filename: `document ${String(i).padStart(3, '0')}.txt`,
      size: bytes.length,
      chunkHashes: [hash],
      folderId: folder.id,
    })
    await api.putChunk(session.uploadId, 0, hash, bytes.length, bytes)
    await api.complete(session.uploadId)
  })
  const url = `${server.process.url}${API_PREFIX}/files?folderId=${folder.id}`
  const response = await request(url, { headers: { authorization: `Bearer ${server.token}` } })
  const body = await response.body.text()
  const listing = JSON.parse(body) as { items: unknown[]; nextCursor: string | null }
  if (
    response.statusCode !== 200 ||
    listing.items.length !== SETTINGS.listingItems ||
    listing.nextCursor !== null
  ) {
    throw new Error(`the listing has ${listing.items.length} items (status ${response.statusCode})`)
  }
  return { url, body }
}

async function load(url: string, expectBytes: number, headers?: Record<string, string>): Promise<LoadResult> {
  const result = await runClient<LoadResult>(
    'load.ts',
    {
      url,
      headers,
      concurrency: SETTINGS.loadConcurrency,
      warmupMs: SETTINGS.loadWarmupMs,
      durationMs: SETTINGS.loadDurationMs,
      expectBytes,
    },
    windowTimeout(SETTINGS.loadWarmupMs, SETTINGS.loadDurationMs),
  )
  say(
    `${result.requests} requests in ${result.seconds} s: ${fmt(result.perSecond)}/s ` +
      `(p50 ${fmt(result.p50Ms, 2)} ms, p99 ${fmt(result.p99Ms, 2)} ms)`,
  )
  return result
}

// ---------------------------------------------------------------------------------------
// Main

async function main(): Promise<number> {
  installExitHandlers()
  const started = new Date()
  const cpus = os.cpus()
  console.log(`Tessera benchmark${QUICK ? ' (BENCH_QUICK=1: smoke run, figures are indicative only)' : ''}`)
  console.log(
    `  ${started.toISOString()}, node ${process.version}, ${os.platform()} ${os.arch()}, ` +
      `${cpus.length} CPU (${cpus[0]?.model.trim() ?? '?'}), ${fmt(os.totalmem() / 1024 ** 3)} GiB RAM`,
  )
  console.log(
    `  big file: ${SIZE_MIB} MiB of random bytes; everything over loopback, each party in its own process`,
  )

  const root = await mkdtemp(path.join(os.tmpdir(), 'tessera-bench-'))
  // On exit, after every child is gone (one of them may still be writing in it).
  onExit(() => {
    if (process.env.BENCH_KEEP_TMP === '1') console.log(`  (kept ${root})`)
    else rmSync(root, { recursive: true, force: true })
  })
  console.log(`  temp dir: ${root}`)

  await phase('build (npm run build)', async () => {
    if (process.env.BENCH_SKIP_BUILD !== '1') await runCommand('npm', ['run', 'build'])
    const built = path.join(REPO_ROOT, 'dist/cli/main.js')
    if (!existsSync(built)) throw new Error('dist/cli/main.js is missing')
    tesseraCommand = { command: process.execPath, args: [built], label: 'node dist/cli/main.js serve' }
  })
  if (!tesseraCommand.label.startsWith('node dist')) {
    console.log('  !!! the build failed: Tessera runs from source through tsx (slower start, same code)')
  }
  say(`Tessera server: ${tesseraCommand.label} (HOST=127.0.0.1 LOG_LEVEL=warn RATE_LIMIT_PER_MINUTE=0)`)

  const bigFile = path.join(root, `random-${SIZE_MIB}MiB.bin`)
  const rssFiles = new Map<number, string>()
  await phase('generate random files', async () => {
    await writeRandomFile(bigFile, SETTINGS.sizeBytes)
    for (const sizeMiB of SETTINGS.rssSizesMiB) {
      if (sizeMiB === SIZE_MIB) continue
      const file = path.join(root, `random-${sizeMiB}MiB.bin`)
      await writeRandomFile(file, sizeMiB * MiB)
      rssFiles.set(sizeMiB, file)
    }
    await syncDisks()
    say(`${[SIZE_MIB, ...rssFiles.keys()].map((size) => `${size} MiB`).join(', ')} written`)
  })

  // 1a. The limit: the slower of hashing the bytes and writing them durably.
  const limit = await phase('limit: openssl dgst -sha256, dd bs=4M conv=fsync', () =>
    measureLimit(bigFile, root),
  )

  // 1b. tus (@tus/server + @tus/file-store on bare http, tus-js-client).
  const tus = await phase('tus upload (tus-js-client defaults: chunkSize Infinity)', async () => {
    const directory = path.join(root, 'tus-data')
    const server = await startBareServer('tus-server', 'tus-server.ts', { directory }, root)
    const upload = async (chunkSize?: number) => {
      await syncDisks()
      const result = await runClient<TusUploadResult>(
        'tus-upload.ts',
        { endpoint: `${server.url}/files`, file: bigFile, chunkSize },
        transferTimeout(SETTINGS.sizeBytes),
      )
      const stored = await stat(path.join(directory, path.basename(new URL(result.url ?? '').pathname)))
      if (stored.size !== SETTINGS.sizeBytes) throw new Error(`tus stored ${stored.size} bytes`)
      // What the same bytes cost once durable: @tus/file-store never fsyncs, Tessera does.
      const flush = await timed(syncDisks)
      return { ...result, syncMs: flush.ms }
    }
    try {
      const sampler = new RssSampler(server.pid)
      sampler.start()
      const plain = await upload().finally(() => sampler.stop())
      const rss = sampler.stop()
      say(
        `${fmtMiB(plain.bytes)} in ${fmtSeconds(plain.ms)} (then sync: ${fmtSeconds(plain.syncMs)}); ` +
          `tus server peak RSS ${fmtMiB(rss.kernelPeak)}`,
      )
      const chunked = QUICK ? undefined : await upload(SETTINGS.chunkSize)
      if (chunked) say(`informational, chunkSize 4 MiB: ${fmtSeconds(chunked.ms)}`)
      return { plain, rss, chunked }
    } finally {
      await server.stop()
      await rm(directory, { recursive: true, force: true })
    }
  })

  // 1, 2, 3, 4 (SQLite), 5 on one Tessera server with SQLite metadata.
  let big: BigUpload | undefined
  const rss = new Map<number, { report: RssReport; idleRss: number }>()
  let smallSqlite: SmallUploadsResult | undefined
  let listing: { url: string; body: string } | undefined
  let listingTessera: LoadResult | undefined
  let healthz: LoadResult | undefined
  let listingBare: LoadResult | undefined
  const sqlite = await phase('start Tessera (SQLite) and register', () =>
    startTessera('tessera-sqlite', root),
  )
  if (sqlite) {
    onCleanup(() => sqlite.close())
    big = await phase(
      `Tessera upload + download ${SIZE_MIB} MiB, bare http download interleaved (RSS sampled)`,
      async () => {
        const bare = await startBareServer('file-server', 'file-server.ts', { file: bigFile }, root)
        try {
          return await tesseraUploadDownload(sqlite, bigFile, SETTINGS.downloadRepeat, bare)
        } finally {
          await bare.stop()
        }
      },
    )
    if (big) rss.set(SIZE_MIB, { report: big.rss, idleRss: sqlite.registeredRss })
    smallSqlite = await phase('Tessera small uploads, SQLite (1 KiB, 16 in flight)', () =>
      smallUploads(sqlite, 'small-files'),
    )
    listing = await phase('prepare a folder of 100 items', () => prepareListing(sqlite))
    const prepared = listing
    if (prepared) {
      const bytes = Buffer.byteLength(prepared.body)
      listingTessera = await phase('Tessera GET /files?folderId= (32 in flight)', () =>
        load(prepared.url, bytes, { authorization: `Bearer ${sqlite.token}` }),
      )
      healthz = await phase('informational: Tessera GET /healthz (32 in flight)', () =>
        load(`${sqlite.process.url}/healthz`, Buffer.byteLength('{"status":"ok"}')),
      )
      // 5. Baseline listing: the same JSON from a bare http server.
      listingBare = await phase('bare http JSON route, same body (32 in flight)', async () => {
        const bodyFile = path.join(root, 'listing.json')
        await writeFile(bodyFile, prepared.body)
        const server = await startBareServer('json-server', 'json-server.ts', { bodyFile }, root)
        try {
          return await load(`${server.url}/`, bytes)
        } finally {
          await server.stop()
        }
      })
    }
    await sqlite.close()
  }

  // 3. The other sizes, each on a fresh server: a peak of its own, not the last phase's heap.
  for (const [sizeMiB, file] of rssFiles) {
    await phase(`Tessera upload + download ${sizeMiB} MiB on a fresh server (RSS sampled)`, async () => {
      const server = await startTessera(`tessera-rss-${sizeMiB}`, root)
      try {
        const transfer = await tesseraUploadDownload(server, file, 1)
        rss.set(sizeMiB, { report: transfer.rss, idleRss: server.registeredRss })
      } finally {
        await server.close()
      }
    })
  }

  // 4. PostgreSQL small uploads, on a throwaway database.
  let pgSkipped: string | undefined
  const smallPg = await phase('Tessera small uploads, PostgreSQL (1 KiB, 16 in flight)', async () => {
    let database: Awaited<ReturnType<typeof createBenchDatabase>>
    try {
      database = await createBenchDatabase(SETTINGS.pgAdminUrl)
    } catch (error) {
      pgSkipped = `PostgreSQL unreachable at ${SETTINGS.pgAdminUrl}: ${(error as Error).message}`
      console.log(`\n  !!!!!!!! SKIPPED: ${pgSkipped}\n`)
      return undefined
    }
    onCleanup(() => database.drop())
    say(`database ${database.name}`)
    const server = await startTessera('tessera-postgres', root, { DATABASE_URL: database.url })
    try {
      return await smallUploads(server, 'small-files')
    } finally {
      await server.close()
      await database.drop()
    }
  })

  await runCleanups()
  if (isAborting()) return abortExitCode()

  // -------------------------------------------------------------------------------------
  // Report
  const size = SETTINGS.sizeBytes
  const rate = (ms: number | undefined) => (ms === undefined ? Number.NaN : mibPerSecond(size, ms))
  const opensslRate = rate(limit?.opensslMs)
  const ddRate = rate(limit?.ddMs)
  const limitRate = Math.min(opensslRate, ddRate)
  const sessionRate = rate(big?.upload.sessionMs)
  const e2eRate = big ? mibPerSecond(size, big.upload.hashMs + big.upload.sessionMs) : Number.NaN
  const hashRate = rate(big?.upload.hashMs)
  const tusRate = rate(tus?.plain.ms)
  const tusDurableRate = tus ? rate(tus.plain.ms + tus.plain.syncMs) : Number.NaN
  const tusChunkedRate = rate(tus?.chunked?.ms)
  const tesseraDownloadRate = rate(big ? median(big.tesseraMs) : undefined)
  const bareDownloadRate = rate(big?.bareMs.length ? median(big.bareMs) : undefined)
  const reps = SETTINGS.downloadRepeat > 1 ? `, median of ${SETTINGS.downloadRepeat}` : ''
  const listingBytes = listing ? Buffer.byteLength(listing.body) : 0
  const perSecond = (result: { perSecond: number } | undefined, unit: string) =>
    result ? `${fmt(result.perSecond)} ${unit}` : 'failed'
  const latency = (result: { p50Ms: number; p99Ms: number } | undefined, digits = 1) =>
    result ? `p50 ${fmt(result.p50Ms, digits)} ms, p99 ${fmt(result.p99Ms, digits)} ms` : ''
  const times = (ms: readonly number[] | undefined) => (ms?.length ? ms.map(fmtSeconds).join(', ') : 'failed')

  console.log(`\n${'='.repeat(110)}\nFIGURES (${SIZE_MIB} MiB random file, loopback)\n`)
  console.log(
    table(
      [
        ['measurement', 'figure', 'detail'],
        ['openssl dgst -sha256', fmtMiBs(opensslRate), limit ? fmtSeconds(limit.opensslMs) : 'failed'],
        ['dd bs=4M conv=fsync (durable copy)', fmtMiBs(ddRate), limit ? fmtSeconds(limit.ddMs) : 'failed'],
        ['=> upload limit (slower of the two)', fmtMiBs(limitRate), ''],
        [
          'Tessera upload, session only',
          fmtMiBs(sessionRate),
          big
            ? `${fmtSeconds(big.upload.sessionMs)}: init → ${SETTINGS.uploadConcurrency} chunk PUTs in flight → complete`
            : 'failed',
        ],
        ['Tessera upload, client hashing only', fmtMiBs(hashRate), big ? fmtSeconds(big.upload.hashMs) : ''],
        ['Tessera upload, end-to-end (hash + session)', fmtMiBs(e2eRate), ''],
        [
          'tus upload (tus-js-client default chunkSize=Infinity)',
          fmtMiBs(tusRate),
          tus ? `${fmtSeconds(tus.plain.ms)}; @tus/file-store does not fsync` : 'failed',
        ],
        [
          'tus upload + sync afterwards (informational)',
          fmtMiBs(tusDurableRate),
          tus ? `+ ${fmtSeconds(tus.plain.syncMs)} of sync: what the same bytes cost once durable` : '',
        ],
        ...(tus?.chunked
          ? [
              [
                'tus upload, chunkSize=4 MiB (informational)',
                fmtMiBs(tusChunkedRate),
                fmtSeconds(tus.chunked.ms),
              ],
            ]
          : []),
        [
          `Tessera download (GET /files/:id/download${reps})`,
          fmtMiBs(tesseraDownloadRate),
          times(big?.tesseraMs),
        ],
        [
          `bare http + fs.createReadStream download${reps}`,
          fmtMiBs(bareDownloadRate),
          `${times(big?.bareMs)} (interleaved with Tessera's)`,
        ],
        ...[...rss.entries()]
          .sort(([a], [b]) => a - b)
          .map(([sizeMiB, { report, idleRss }]) => [
            `Tessera peak RSS, upload + download ${sizeMiB} MiB`,
            fmtMiB(report.kernelPeak),
            `${report.peakWasReset ? 'VmHWM reset at phase start' : 'VmHWM since process start'}; ` +
              `sampled max VmRSS ${fmtMiB(report.sampledPeak)}; ${fmtMiB(idleRss)} before the phase`,
          ]),
        ...(tus ? [['tus server peak RSS, upload (informational)', fmtMiB(tus.rss.kernelPeak), '']] : []),
        [
          '1 KiB uploads/s, SQLite',
          perSecond(smallSqlite, 'ops/s'),
          smallSqlite ? `${latency(smallSqlite)}, 16 in flight` : '',
        ],
        [
          '1 KiB uploads/s, PostgreSQL',
          smallPg ? perSecond(smallPg, 'ops/s') : pgSkipped ? 'SKIPPED' : 'failed',
          smallPg ? `${latency(smallPg)}, 16 in flight` : (pgSkipped ?? ''),
        ],
        [
          'GET /files?folderId= (100 items), Tessera',
          perSecond(listingTessera, 'req/s'),
          listingTessera ? `${listingBytes} B body, ${latency(listingTessera, 2)}, 32 in flight` : '',
        ],
        [
          'same JSON from a bare http route',
          perSecond(listingBare, 'req/s'),
          listingBare ? `${latency(listingBare, 2)}, 32 in flight` : '',
        ],
        [
          'GET /healthz, Tessera (informational)',
          perSecond(healthz, 'req/s'),
          healthz ? `${latency(healthz, 2)}: the framework's floor, no auth, no database` : '',
        ],
      ],
      ['l', 'r', 'l'],
    ),
  )

  interface Goal {
    goal: string
    measured: string
    value: number
    target: number
    atLeast: boolean
    show: (value: number) => string
  }
  const ratioGoal = (goal: string, measured: string, value: number, target: number): Goal => ({
    goal,
    measured,
    value,
    target,
    atLeast: true,
    show: fmtRatio,
  })
  const goals: Goal[] = [
    ratioGoal(
      '1a upload (session) / limit',
      `${fmtMiBs(sessionRate)} / ${fmtMiBs(limitRate)}`,
      sessionRate / limitRate,
      GOALS.uploadVsLimit,
    ),
    ratioGoal(
      '1b upload (session) / tus',
      `${fmtMiBs(sessionRate)} / ${fmtMiBs(tusRate)}`,
      sessionRate / tusRate,
      GOALS.uploadVsTus,
    ),
    ratioGoal(
      '2  download / bare http',
      `${fmtMiBs(tesseraDownloadRate)} / ${fmtMiBs(bareDownloadRate)}`,
      tesseraDownloadRate / bareDownloadRate,
      GOALS.downloadVsBare,
    ),
    ...SETTINGS.rssSizesMiB.map((sizeMiB): Goal => {
      const measured = rss.get(sizeMiB)?.report
      return {
        goal: `3  peak RSS, ${sizeMiB} MiB up + down`,
        measured: measured ? `VmHWM ${fmtMiB(measured.kernelPeak)}` : 'failed',
        value: measured ? measured.kernelPeak / MiB : Number.NaN,
        target: GOALS.peakRssMiB,
        atLeast: false,
        show: (value) => `${fmt(value)} MiB`,
      }
    }),
    {
      goal: '4  1 KiB uploads/s, SQLite',
      measured: perSecond(smallSqlite, 'ops/s'),
      value: smallSqlite?.perSecond ?? Number.NaN,
      target: GOALS.smallSqlitePerSecond,
      atLeast: true,
      show: (value) => `${fmt(value)}/s`,
    },
    ratioGoal(
      '5  listing / bare JSON route',
      `${fmt(listingTessera?.perSecond ?? Number.NaN)} / ${fmt(listingBare?.perSecond ?? Number.NaN)} req/s`,
      (listingTessera?.perSecond ?? Number.NaN) / (listingBare?.perSecond ?? Number.NaN),
      GOALS.listingVsBare,
    ),
  ]
  const verdict = (goal: Goal) => {
    if (!Number.isFinite(goal.value)) return 'n/a'
    return (goal.atLeast ? goal.value >= goal.target : goal.value < goal.target) ? 'PASS' : 'MISS'
  }
  console.log(`\n${'='.repeat(110)}\nGOALS (a miss is reported, never fatal)\n`)
  console.log(
    table(
      [
        ['goal', 'measured', 'ratio / value', 'target', 'result'],
        ...goals.map((goal) => [
          goal.goal,
          goal.measured,
          goal.show(goal.value),
          `${goal.atLeast ? '>=' : '<'} ${goal.show(goal.target)}`,
          verdict(goal),
        ]),
        [
          '   (info) 1 KiB uploads/s, PostgreSQL',
          smallPg ? perSecond(smallPg, 'ops/s') : pgSkipped ? 'SKIPPED (unreachable)' : 'failed',
          '',
          'no goal',
          '',
        ],
      ],
      ['l', 'l', 'r', 'l', 'l'],
    ),
  )
  console.log(
    '\nNotes:\n' +
      '- 1a and 1b use the upload SESSION figure: init → chunk PUTs → complete, with the chunk hashes computed\n' +
      '  beforehand, as a sync client that indexed the file already has them. End-to-end, client hashing\n' +
      `  included: ${fmtMiBs(e2eRate)} = ${fmtRatio(e2eRate / limitRate)} of the limit, ${fmtRatio(e2eRate / tusRate)} of tus.\n` +
      '- Tessera fsyncs every chunk before acknowledging it; @tus/file-store does not fsync (see "tus upload +\n' +
      '  sync"). `sync` runs before each timed upload so that no phase pays for an earlier one\'s dirty pages.\n' +
      '- All reads come from the page cache (the random file was just written; RAM is ample).\n' +
      `- Client and server share ${cpus.length} CPU(s): the client process competes with the server it measures.`,
  )
  return failedPhasesExitCode(failures)
}

runBenchmark(main)

// `npm run bench`: Tessera against the limits and baselines of the performance goals, each
// measured in this run on the same bytes. A benchmark, not a test: a missed goal is printed
// as MISS and never fails the process (a phase that cannot run at all exits 1 at the end).
//
//   BENCH_SIZE_MIB=1024   size of the big random file (default 1024; 64 with BENCH_QUICK=1)
//   BENCH_QUICK=1         smoke run: small file, short windows, single runs
//   BENCH_PG_URL=...      PostgreSQL admin URL (default postgres://postgres@127.0.0.1:5432/postgres)
//   BENCH_SKIP_BUILD=1    use the existing dist/ instead of running `npm run build`
//   BENCH_KEEP_TMP=1      keep the temp directory (server logs) after the run
import { writeFile } from 'node:fs/promises'
import path from 'node:path'
import { writeRandomFile } from './lib/files.js'
import { failedPhasesExitCode, phase, say, skip } from './lib/phases.js'
import { createBenchDatabase, postgresUnreachable } from './lib/postgres.js'
import { isAborting, onCleanup, runBenchmark, runCleanups } from './lib/processes.js'
import {
  load,
  measureLimit,
  measureTus,
  prepareListing,
  smallUploads,
  syncDisks,
  tesseraUploadDownload,
} from './lib/run-measurements.js'
import { type RunResults, report } from './lib/run-report.js'
import { startBareServer, startTesseraWithAccount, type TesseraServer } from './lib/run-servers.js'
import { SETTINGS, SIZE_MIB } from './lib/run-settings.js'
import { beginBenchmark } from './lib/settings.js'
import { buildTessera, sourceTessera, type TesseraCommand } from './lib/tessera-server.js'
import { MiB } from './lib/timing.js'

interface Run {
  root: string
  tessera: TesseraCommand
  /** The big random file, and the smaller ones peak RSS is also measured on (by size in MiB). */
  bigFile: string
  rssFiles: Map<number, string>
  results: RunResults
}

/** This checkout's build, or its source when the build failed. */
async function tesseraToMeasure(): Promise<TesseraCommand> {
  const built = await buildTessera()
  if (!built)
    console.log('  !!! the build failed: Tessera runs from source through tsx (slower start, same code)')
  const tessera = built ?? sourceTessera()
  say(`Tessera server: ${tessera.label} (HOST=127.0.0.1 LOG_LEVEL=warn RATE_LIMIT_PER_MINUTE=0)`)
  return tessera
}

async function generateFiles(run: Run): Promise<void> {
  await phase('generate random files', async () => {
    await writeRandomFile(run.bigFile, SETTINGS.sizeBytes)
    for (const sizeMiB of SETTINGS.rssSizesMiB) {
      if (sizeMiB === SIZE_MIB) continue
      const file = path.join(run.root, `random-${sizeMiB}MiB.bin`)
      await writeRandomFile(file, sizeMiB * MiB)
      run.rssFiles.set(sizeMiB, file)
    }
    await syncDisks()
    say(`${[SIZE_MIB, ...run.rssFiles.keys()].map((size) => `${size} MiB`).join(', ')} written`)
  })
}

/** 1 (upload, download) and 3 (peak RSS) on the big file, with the bare http download interleaved. */
async function bigTransfer(run: Run, server: TesseraServer): Promise<void> {
  const big = await phase(
    `Tessera upload + download ${SIZE_MIB} MiB, bare http download interleaved (RSS sampled)`,
    async () => {
      const bare = await startBareServer('file-server', 'file-server.ts', { file: run.bigFile }, run.root)
      try {
        return await tesseraUploadDownload(server, run.bigFile, SETTINGS.downloadRepeat, bare)
      } finally {
        await bare.stop()
      }
    },
  )
  run.results.big = big
  if (big) run.results.rss.set(SIZE_MIB, { report: big.rss, idleRss: server.registeredRss })
}

/** 5: a listing of 100 items from Tessera and the same JSON from a bare http server; /healthz for scale. */
async function listings(run: Run, server: TesseraServer): Promise<void> {
  const listing = await phase('prepare a folder of 100 items', () => prepareListing(server))
  run.results.listing = listing
  if (!listing) return
  const bytes = Buffer.byteLength(listing.body)
  run.results.listingTessera = await phase('Tessera GET /files?folderId= (32 in flight)', () =>
    load(listing.url, bytes, { authorization: `Bearer ${server.token}` }),
  )
  run.results.healthz = await phase('informational: Tessera GET /healthz (32 in flight)', () =>
    load(`${server.process.url}/healthz`, Buffer.byteLength('{"status":"ok"}')),
  )
  run.results.listingBare = await phase('bare http JSON route, same body (32 in flight)', async () => {
    const bodyFile = path.join(run.root, 'listing.json')
    await writeFile(bodyFile, listing.body)
    const bare = await startBareServer('json-server', 'json-server.ts', { bodyFile }, run.root)
    try {
      return await load(`${bare.url}/`, bytes)
    } finally {
      await bare.stop()
    }
  })
}

/** 1, 2, 3, 4 (SQLite) and 5 on one Tessera server with SQLite metadata. */
async function sqliteServer(run: Run): Promise<void> {
  const server = await phase('start Tessera (SQLite) and register', () =>
    startTesseraWithAccount(run.tessera, 'tessera-sqlite', run.root),
  )
  if (!server) return
  await bigTransfer(run, server)
  run.results.smallSqlite = await phase('Tessera small uploads, SQLite (1 KiB, 16 in flight)', () =>
    smallUploads(server, 'small-files'),
  )
  await listings(run, server)
  await server.close()
}

/** 3 on the other sizes, each on a fresh server: a peak of its own, not the last phase's heap. */
async function peakRssOnFreshServers(run: Run): Promise<void> {
  for (const [sizeMiB, file] of run.rssFiles) {
    await phase(`Tessera upload + download ${sizeMiB} MiB on a fresh server (RSS sampled)`, async () => {
      const server = await startTesseraWithAccount(run.tessera, `tessera-rss-${sizeMiB}`, run.root)
      try {
        const transfer = await tesseraUploadDownload(server, file, 1)
        run.results.rss.set(sizeMiB, { report: transfer.rss, idleRss: server.registeredRss })
      } finally {
        await server.close()
      }
    })
  }
}

/** 4 on PostgreSQL (informational), on a throwaway database. */
async function postgresSmallUploads(run: Run): Promise<void> {
  run.results.smallPg = await phase('Tessera small uploads, PostgreSQL (1 KiB, 16 in flight)', async () => {
    const unreachable = await postgresUnreachable(SETTINGS.pgAdminUrl)
    if (unreachable) {
      run.results.pgSkipped = skip('PostgreSQL small uploads', unreachable)
      return undefined
    }
    const database = await createBenchDatabase(SETTINGS.pgAdminUrl)
    onCleanup(() => database.drop())
    say(`database ${database.name}`)
    const server = await startTesseraWithAccount(run.tessera, 'tessera-postgres', run.root, {
      DATABASE_URL: database.url,
    })
    try {
      return await smallUploads(server, 'small-files')
    } finally {
      await server.close()
      await database.drop()
    }
  })
}

async function main(): Promise<number> {
  const root = await beginBenchmark({
    title: 'Tessera benchmark',
    settings: [
      `big file: ${SIZE_MIB} MiB of random bytes; everything over loopback, each party in its own process`,
    ],
    tmpPrefix: 'tessera-bench-',
  })
  const tessera = await tesseraToMeasure()
  const run: Run = {
    root,
    tessera,
    bigFile: path.join(root, `random-${SIZE_MIB}MiB.bin`),
    rssFiles: new Map(),
    results: { rss: new Map() },
  }
  await generateFiles(run)
  run.results.limit = await phase('limit: openssl dgst -sha256, dd bs=4M conv=fsync', () =>
    measureLimit(run.bigFile, root),
  )
  run.results.tus = await phase('tus upload (tus-js-client defaults: chunkSize Infinity)', () =>
    measureTus(run.bigFile, root),
  )
  await sqliteServer(run)
  await peakRssOnFreshServers(run)
  await postgresSmallUploads(run)
  await runCleanups()
  if (isAborting()) return 1
  report(run.results)
  return failedPhasesExitCode()
}

runBenchmark(main)

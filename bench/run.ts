// `npm run bench`: uploads as outside clients see them, against the limits and tus measured in
// the same run on the same file, then memory, downloads, small files and listings. A benchmark,
// not a test: a missed goal is printed as MISS and never fails the process (a phase that cannot
// run at all exits 1 at the end).
//
//   BENCH_SIZES_MIB=256,1024  sizes of the big random files (default 256,1024; 16 with BENCH_QUICK=1)
//   BENCH_ROUNDS=3        rounds of every upload measurement (default 3 up to 256 MiB, 2 above)
//   BENCH_QUICK=1         smoke run: a small file, short windows, one round
//   BENCH_PG=0            SQLite only; BENCH_PG_URL=... PostgreSQL admin URL
//   BENCH_SKIP_BUILD=1    use the existing dist/ instead of running `npm run build`
//   BENCH_KEEP_TMP=1      keep the temp directory (server logs) after the run
import { rm, writeFile } from 'node:fs/promises'
import path from 'node:path'
import type { Backend } from './lib/backends.js'
import { writeRandomFile } from './lib/files.js'
import { failedPhasesExitCode, phase, say, skip } from './lib/phases.js'
import { postgresUnreachable } from './lib/postgres.js'
import { isAborting, runBenchmark, runCleanups } from './lib/processes.js'
import { downloads, load, prepareListing, smallFiles } from './lib/run-measurements.js'
import { type RunResults, report } from './lib/run-report.js'
import { startBareServer, type TesseraServer, withTessera } from './lib/run-servers.js'
import { SIZES_MIB } from './lib/run-settings.js'
import { beginBenchmark, PG_ADMIN_URL, PG_ENABLED } from './lib/settings.js'
import { buildTessera, sourceTessera, type TesseraCommand } from './lib/tessera-server.js'
import { MiB } from './lib/timing.js'
import { measureUploads, syncDisks } from './lib/upload-rounds.js'

/** This checkout's build, or its source when the build failed. */
async function tesseraToMeasure(): Promise<TesseraCommand> {
  const built = await buildTessera()
  if (!built)
    console.log('  !!! the build failed: Tessera runs from source through tsx (slower start, same code)')
  const tessera = built ?? sourceTessera()
  say(`Tessera server: ${tessera.label} (HOST=127.0.0.1 LOG_LEVEL=warn RATE_LIMIT_PER_MINUTE=0)`)
  return tessera
}

async function backendsToMeasure(results: RunResults): Promise<Backend[]> {
  const unreachable = PG_ENABLED ? await postgresUnreachable(PG_ADMIN_URL) : 'not run (BENCH_PG=0)'
  if (!unreachable) return ['SQLite', 'PostgreSQL']
  results.pgSkipped = PG_ENABLED ? skip('PostgreSQL', unreachable) : unreachable
  return ['SQLite']
}

/** The uploads of one size on every backend, then its downloads against a bare http server. */
async function oneSize(results: RunResults, tessera: TesseraCommand, root: string, sizeMiB: number) {
  const file = path.join(root, `random-${sizeMiB}MiB.bin`)
  const written = await phase(`generate ${sizeMiB} MiB of random bytes`, async () => {
    await writeRandomFile(file, sizeMiB * MiB)
    await syncDisks()
    return true
  })
  if (!written) return
  results.uploads.push(await measureUploads({ tessera, root, file, backends: results.backends }))
  const transfer = await phase(`download ${sizeMiB} MiB, SQLite, interleaved with bare http`, async () => {
    const bare = await startBareServer('file-server', 'file-server.ts', { file }, root)
    try {
      return await withTessera(tessera, 'SQLite', `sqlite-download-${sizeMiB}MiB`, root, (server) =>
        downloads(server, file, bare),
      )
    } finally {
      await bare.stop()
    }
  })
  if (transfer) results.downloads.push(transfer)
  await rm(file, { force: true })
}

/** A listing of 100 items from Tessera and the same JSON from a bare http server; /healthz for scale. */
async function listings(results: RunResults, server: TesseraServer, root: string): Promise<void> {
  const listing = await prepareListing(server)
  results.listing = listing
  const bytes = Buffer.byteLength(listing.body)
  say('GET /files?folderId= (32 in flight)')
  results.listingTessera = await load(listing.url, bytes, { authorization: `Bearer ${server.token}` })
  say('GET /healthz (32 in flight)')
  results.healthz = await load(`${server.process.url}/healthz`, Buffer.byteLength('{"status":"ok"}'))
  const bodyFile = path.join(root, 'listing.json')
  await writeFile(bodyFile, listing.body)
  const bare = await startBareServer('json-server', 'json-server.ts', { bodyFile }, root)
  try {
    say('bare http JSON route, same body (32 in flight)')
    results.listingBare = await load(`${bare.url}/`, bytes)
  } finally {
    await bare.stop()
  }
}

/** Small files (one request, then three) on each backend; listings on SQLite. */
async function requestsPerSecond(results: RunResults, tessera: TesseraCommand, root: string) {
  for (const backend of results.backends) {
    await phase(`small files, ${backend} (4 KiB, 16 fetch clients)`, () =>
      withTessera(
        tessera,
        backend,
        `${backend === 'SQLite' ? 'sqlite' : 'pg'}-small`,
        root,
        async (server) => {
          const oneRequest = await smallFiles(server, 'one-request')
          const threeRequest = await smallFiles(server, 'three-request')
          results.small.set(backend, { oneRequest, threeRequest })
        },
      ),
    )
  }
  await phase('listings, SQLite', () =>
    withTessera(tessera, 'SQLite', 'sqlite-listing', root, (server) => listings(results, server, root)),
  )
}

async function main(): Promise<number> {
  const root = await beginBenchmark({
    title: 'Tessera benchmark',
    settings: [
      `sizes: ${SIZES_MIB.map((size) => `${size} MiB`).join(', ')} of random bytes; 4 MiB chunks; ` +
        'everything over loopback, each party in its own process',
    ],
    tmpPrefix: 'tessera-bench-',
  })
  const tessera = await tesseraToMeasure()
  const results: RunResults = { backends: [], uploads: [], downloads: [], small: new Map() }
  results.backends = await backendsToMeasure(results)
  for (const sizeMiB of SIZES_MIB) {
    if (isAborting()) break
    await oneSize(results, tessera, root, sizeMiB)
  }
  await requestsPerSecond(results, tessera, root)
  await runCleanups()
  if (isAborting()) return 1
  report(results)
  return failedPhasesExitCode()
}

runBenchmark(main)

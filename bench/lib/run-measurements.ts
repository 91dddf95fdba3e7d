// What bench/run.ts measures besides the big uploads (bench/lib/upload-rounds.ts): downloads
// against a bare http server, small files, and listings, each through a client in a process of
// its own.
import { stat } from 'node:fs/promises'
import { request } from 'undici'
import type { DownloadResult } from '../clients/download.js'
import type { LoadResult } from '../clients/load.js'
import type { SmallFilesResult, SmallUploadMode } from '../clients/small-files.js'
import { API_PREFIX, forEachConcurrently, sha256Hex } from './api.js'
import type { WholeUploadResult } from './outside-client.js'
import { say } from './phases.js'
import { runClient, type ServerProcess } from './processes.js'
import type { TesseraServer } from './run-servers.js'
import { SETTINGS, transferTimeout, windowTimeout } from './run-settings.js'
import { fmt, fmtMiB, fmtSeconds } from './timing.js'
import { syncDisks } from './upload-rounds.js'

export interface Downloads {
  sizeMiB: number
  tesseraMs: number[]
  bareMs: number[]
}

/**
 * Uploads `file` (fetch, 8 PUTs), then downloads it `repeat` times through Tessera and as many
 * from `bare` in turns, T B, B T, T B…: neither side always goes first.
 */
export async function downloads(
  server: TesseraServer,
  file: string,
  bare: ServerProcess,
): Promise<Downloads> {
  const { size } = await stat(file)
  await syncDisks()
  const upload = await runClient<WholeUploadResult>(
    'fetch-upload.ts',
    { base: server.process.url, token: server.token, file, chunkSize: SETTINGS.chunkSize, concurrency: 8 },
    transferTimeout(size),
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
  for (let run = 0; run < SETTINGS.downloadRepeat; run++) {
    if (run % 2 === 1) bareMs.push(await downloadOnce(`${bare.url}/`))
    tesseraMs.push(await tessera())
    if (run % 2 === 0) bareMs.push(await downloadOnce(`${bare.url}/`))
  }
  say(`Tessera download ${fmtMiB(size)}: ${tesseraMs.map((ms) => fmtSeconds(ms)).join(', ')}`)
  say(`bare http download ${fmtMiB(size)}: ${bareMs.map((ms) => fmtSeconds(ms)).join(', ')}`)
  return { sizeMiB: Math.round(size / 2 ** 20), tesseraMs, bareMs }
}

/** Distinct 4 KiB files into a new folder from 16 `fetch` clients, over a measured window. */
export async function smallFiles(server: TesseraServer, mode: SmallUploadMode): Promise<SmallFilesResult> {
  const folder = await server.api.json<{ id: string }>('POST', '/folders', { name: `small-${mode}` }, 201)
  const result = await runClient<SmallFilesResult>(
    'small-files.ts',
    {
      base: server.process.url,
      token: server.token,
      folderId: folder.id,
      mode,
      size: SETTINGS.smallFileBytes,
      concurrency: SETTINGS.smallConcurrency,
      warmupMs: SETTINGS.smallWarmupMs,
      durationMs: SETTINGS.smallDurationMs,
    },
    windowTimeout(SETTINGS.smallWarmupMs, SETTINGS.smallDurationMs),
  )
  if (!result.available) say(`${mode}: not available (${result.why})`)
  else
    say(
      `${mode}: ${result.count} files in ${result.seconds} s: ${fmt(result.perSecond)}/s ` +
        `(p50 ${fmt(result.p50Ms)} ms, p99 ${fmt(result.p99Ms)} ms)`,
    )
  return result
}

export interface Listing {
  url: string
  body: string
}

/** Fills a folder with `listingItems` entries (some subfolders, the rest 1 KiB files). */
export async function prepareListing(server: TesseraServer): Promise<Listing> {
  const api = server.api
  const folder = await api.json<{ id: string }>('POST', '/folders', { name: 'listing-100' }, 201)
  for (let i = 0; i < SETTINGS.listingSubfolders; i++) {
    const name = `folder ${String(i).padStart(2, '0')}`
    await api.json('POST', '/folders', { name, parentId: folder.id }, 201)
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

/** GETs `url`, `loadConcurrency` in flight, over a measured window. */
export async function load(
  url: string,
  expectBytes: number,
  headers?: Record<string, string>,
): Promise<LoadResult> {
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

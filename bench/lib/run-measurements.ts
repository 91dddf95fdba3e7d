// What bench/run.ts measures: the limit of the machine, tus, and Tessera's transfers, small
// uploads and listings, each through a client in a process of its own.
import { rm, stat } from 'node:fs/promises'
import path from 'node:path'
import { request } from 'undici'
import type { DownloadResult } from '../clients/download.js'
import type { LoadResult } from '../clients/load.js'
import type { SmallUploadsResult } from '../clients/small-uploads.js'
import type { TesseraUploadResult } from '../clients/tessera-upload.js'
import type { TusUploadResult } from '../clients/tus-upload.js'
import { API_PREFIX, forEachConcurrently, sha256Hex } from './api.js'
import { say } from './phases.js'
import { runClient, runCommand, type ServerProcess } from './processes.js'
import { type RssReport, RssSampler } from './rss.js'
import { startBareServer, type TesseraServer } from './run-servers.js'
import { SETTINGS, transferTimeout, windowTimeout } from './run-settings.js'
import { QUICK } from './settings.js'
import { fmt, fmtMiB, fmtMiBs, fmtSeconds, mibPerSecond, timed } from './timing.js'

/** Flushes dirty pages left by an earlier phase, so they are not written back during the next. */
export const syncDisks = (): Promise<string> => runCommand('sync', [])

export interface Limit {
  opensslMs: number
  ddMs: number
}

/** The upload limit: the slower of hashing the bytes and writing them durably. */
export async function measureLimit(file: string, root: string): Promise<Limit> {
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

type DurableTusUpload = TusUploadResult & { syncMs: number }

export interface TusFigures {
  plain: DurableTusUpload
  rss: RssReport
  /** With 4 MiB chunks (informational; not in a quick run). */
  chunked: DurableTusUpload | undefined
}

/** tus (@tus/server + @tus/file-store on bare http, tus-js-client) uploading `file`. */
export async function measureTus(file: string, root: string): Promise<TusFigures> {
  const directory = path.join(root, 'tus-data')
  const server = await startBareServer('tus-server', 'tus-server.ts', { directory }, root)
  const upload = async (chunkSize?: number): Promise<DurableTusUpload> => {
    await syncDisks()
    const result = await runClient<TusUploadResult>(
      'tus-upload.ts',
      { endpoint: `${server.url}/files`, file, chunkSize },
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
}

export interface BigUpload {
  upload: TesseraUploadResult
  /** Download times through Tessera and (when a bare server was given) from the bare server. */
  tesseraMs: number[]
  bareMs: number[]
  rss: RssReport
}

/**
 * Uploads one file to Tessera, then downloads it `repeat` times, alternating with downloads of
 * the same bytes from the bare file server when one is given. The Tessera server's memory is
 * sampled from the upload's start to the last download.
 */
export async function tesseraUploadDownload(
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
    const upload = await tesseraUpload(server, file, size)
    const { tesseraMs, bareMs } = await interleavedDownloads(server, upload.fileId, size, repeat, bare)
    const rss = sampler.stop()
    say(`Tessera peak RSS ${fmtMiB(rss.kernelPeak)} (VmHWM), sampled max VmRSS ${fmtMiB(rss.sampledPeak)}`)
    return { upload, tesseraMs, bareMs, rss }
  } finally {
    sampler.stop()
  }
}

async function tesseraUpload(server: TesseraServer, file: string, size: number) {
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
  return upload
}

/** Downloads through Tessera and from `bare` in turns, T B, B T, T B…: neither side always goes first. */
async function interleavedDownloads(
  server: TesseraServer,
  fileId: string,
  size: number,
  repeat: number,
  bare: ServerProcess | undefined,
) {
  const downloadOnce = async (url: string, headers?: Record<string, string>) => {
    const result = await runClient<DownloadResult>(
      'download.ts',
      { url, headers, expectBytes: size, repeat: 1 },
      transferTimeout(size),
    )
    return result.ms[0]!
  }
  const tessera = () =>
    downloadOnce(`${server.process.url}${API_PREFIX}/files/${fileId}/download`, {
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
  return { tesseraMs, bareMs }
}

/** 1 KiB uploads into a new folder, `smallConcurrency` in flight, over a measured window. */
export async function smallUploads(server: TesseraServer, folderName: string): Promise<SmallUploadsResult> {
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

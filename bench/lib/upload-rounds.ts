// The upload measurements of bench/run.ts on one file: in each round the limits (openssl, dd),
// tus, and every outside client on every backend, each upload on a fresh server (fresh content:
// nothing deduplicated) whose memory is sampled throughout. The limits are measured again
// between the backends, so that a drift of the machine hits figures and limits alike.
import { randomBytes } from 'node:crypto'
import { rm, stat } from 'node:fs/promises'
import path from 'node:path'
import type { TusUploadResult } from '../clients/tus-upload.js'
import { sha256Hex } from './api.js'
import type { Backend } from './backends.js'
import type { WholeUploadResult } from './outside-client.js'
import { phase, say } from './phases.js'
import { runClient, runCommand } from './processes.js'
import { startBareServer, type TesseraServer, withTessera } from './run-servers.js'
import { SETTINGS, transferTimeout, UPLOAD_CLIENTS, type UploadClient } from './run-settings.js'
import type { TesseraCommand } from './tessera-server.js'
import { fmt, fmtMiB, fmtMiBs, fmtSeconds, mibPerSecond, timed } from './timing.js'

/** Flushes dirty pages left by an earlier step, so they are not written back during the next. */
export const syncDisks = (): Promise<string> => runCommand('sync', [])

export interface Limit {
  opensslMs: number
  ddMs: number
}

export interface TusRound {
  /** tus-js-client's defaults (one PATCH), then the `sync` of what it left unsynced. */
  ms: number
  syncMs: number
  /** chunkSize 4 MiB, like Tessera's chunks. */
  chunkedMs: number
}

export interface UploadFigures {
  sizeMiB: number
  bytes: number
  rounds: number
  limits: Limit[]
  tus: TusRound[]
  /** By `${backend} ${client id}`. */
  uploads: Map<string, WholeUploadResult[]>
  failures: string[]
}

export const uploadKey = (backend: Backend, client: UploadClient): string => `${backend} ${client.id}`

interface Context {
  tessera: TesseraCommand
  root: string
  file: string
  backends: Backend[]
}

/** The slower of hashing the bytes (openssl) and writing them durably (dd conv=fsync). */
async function measureLimit(file: string, root: string): Promise<Limit> {
  const { size } = await stat(file)
  await syncDisks()
  const openssl = await timed(() => runCommand('openssl', ['dgst', '-sha256', file]))
  const copy = path.join(root, 'dd-copy.bin')
  await syncDisks()
  const dd = await timed(() => runCommand('dd', [`if=${file}`, `of=${copy}`, 'bs=4M', 'conv=fsync']))
  await rm(copy, { force: true })
  await syncDisks()
  say(
    `limit: openssl ${fmtMiBs(mibPerSecond(size, openssl.ms))}, dd conv=fsync ${fmtMiBs(mibPerSecond(size, dd.ms))}`,
  )
  return { opensslMs: openssl.ms, ddMs: dd.ms }
}

/** tus-js-client → @tus/server + @tus/file-store on bare http, with its defaults and with 4 MiB chunks. */
async function measureTus(file: string, root: string): Promise<TusRound> {
  const { size } = await stat(file)
  const directory = path.join(root, 'tus-data')
  const server = await startBareServer('tus-server', 'tus-server.ts', { directory }, root)
  const upload = async (chunkSize?: number) => {
    await syncDisks()
    const result = await runClient<TusUploadResult>(
      'tus-upload.ts',
      { endpoint: `${server.url}/files`, file, chunkSize },
      transferTimeout(size),
    )
    const stored = await stat(path.join(directory, path.basename(new URL(result.url ?? '').pathname)))
    if (stored.size !== size) throw new Error(`tus stored ${stored.size} bytes`)
    // What the same bytes cost once durable: @tus/file-store never fsyncs, Tessera does.
    return { ms: result.ms, syncMs: (await timed(syncDisks)).ms }
  }
  try {
    const plain = await upload()
    const chunked = await upload(SETTINGS.chunkSize)
    say(
      `tus: ${fmtMiBs(mibPerSecond(size, plain.ms))} (then sync ${fmtSeconds(plain.syncMs)}); ` +
        `chunkSize 4 MiB ${fmtMiBs(mibPerSecond(size, chunked.ms))}`,
    )
    return { ms: plain.ms, syncMs: plain.syncMs, chunkedMs: chunked.ms }
  } finally {
    await server.stop()
    await rm(directory, { recursive: true, force: true })
  }
}

/**
 * Two fresh chunks through the project's client, untimed: a server that has just started would
 * otherwise charge its first requests' JIT compilation and statement preparation to the figure.
 */
async function warmUp(server: TesseraServer): Promise<void> {
  const chunks = [randomBytes(SETTINGS.chunkSize), randomBytes(SETTINGS.chunkSize)]
  const hashes = chunks.map(sha256Hex)
  const session = await server.api.init({
    filename: 'warm-up.bin',
    size: 2 * SETTINGS.chunkSize,
    chunkHashes: hashes,
  })
  for (const [index, chunk] of chunks.entries())
    await server.api.putChunk(session.uploadId, index, hashes[index]!, chunk.length, chunk)
  await server.api.complete(session.uploadId)
}

/** One outside client's upload of the file to a fresh (warmed-up) server. */
async function uploadOnce(context: Context, backend: Backend, client: UploadClient, name: string) {
  const { size } = await stat(context.file)
  return withTessera(context.tessera, backend, name, context.root, async (server) => {
    await warmUp(server)
    await syncDisks()
    const result = await runClient<WholeUploadResult>(
      client.script,
      {
        base: server.process.url,
        token: server.token,
        file: context.file,
        chunkSize: SETTINGS.chunkSize,
        concurrency: client.concurrency,
      },
      transferTimeout(size),
    )
    say(
      `${backend} ${client.id}: ${fmtMiBs(mibPerSecond(size, result.ms))} (${fmtSeconds(result.ms)}: hash ` +
        `${fmtSeconds(result.hashMs)}, init ${fmt(result.initMs)} ms, PUTs ${fmtSeconds(result.putsMs)}, ` +
        `complete ${fmt(result.completeMs)} ms)`,
    )
    return result
  })
}

/** Each round starts with a different client, so that no client always follows the same one. */
const rotated = <T>(items: readonly T[], by: number): T[] =>
  items.map((_, i) => items[(i + by) % items.length]!)

async function oneRound(context: Context, figures: UploadFigures, round: number): Promise<void> {
  const attempt = async <T>(what: string, work: () => Promise<T>): Promise<T | undefined> => {
    try {
      return await work()
    } catch (error) {
      const message = `${figures.sizeMiB} MiB round ${round + 1}, ${what}: ${(error as Error).message}`
      figures.failures.push(message.split('\n')[0]!)
      say(`FAILED ${message}`)
      return undefined
    }
  }
  for (const [i, backend] of context.backends.entries()) {
    const limit = await attempt('limit', () => measureLimit(context.file, context.root))
    if (limit) figures.limits.push(limit)
    if (i === 0) {
      const tus = await attempt('tus', () => measureTus(context.file, context.root))
      if (tus) figures.tus.push(tus)
    }
    for (const client of rotated(UPLOAD_CLIENTS, round)) {
      const name = `${backend === 'SQLite' ? 'sqlite' : 'pg'}-${client.id}-${figures.sizeMiB}MiB-r${round + 1}`
      const result = await attempt(`${backend} ${client.id}`, () =>
        uploadOnce(context, backend, client, name),
      )
      if (!result) continue
      const key = uploadKey(backend, client)
      figures.uploads.set(key, [...(figures.uploads.get(key) ?? []), result])
    }
  }
}

/** Every round on `file`, each a phase. */
export async function measureUploads(context: Context): Promise<UploadFigures> {
  const { size } = await stat(context.file)
  const sizeMiB = Math.round(size / 2 ** 20)
  const figures: UploadFigures = {
    sizeMiB,
    bytes: size,
    rounds: SETTINGS.rounds(sizeMiB),
    limits: [],
    tus: [],
    uploads: new Map(),
    failures: [],
  }
  for (let round = 0; round < figures.rounds; round++) {
    await phase(`uploads of ${fmtMiB(size)}, round ${round + 1} of ${figures.rounds}`, () =>
      oneRound(context, figures, round),
    )
  }
  return figures
}

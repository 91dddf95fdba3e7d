// What the outside clients of bench/clients/ share: nothing of the project's own client (no
// undici, no bench/lib/api.ts), only Node's global `fetch`, node:crypto and node:fs, as a
// user's script would have.
import { createHash } from 'node:crypto'
import type { FileHandle } from 'node:fs/promises'
import { open } from 'node:fs/promises'

export { forEachConcurrently as inLanes } from './lanes.js'

export const API_PREFIX = '/api/v1'

export const sha256Hex = (bytes: Uint8Array): string => createHash('sha256').update(bytes).digest('hex')

/** Reads `length` bytes at `offset` into `buffer` (a read may return fewer than asked). */
export async function readFully(handle: FileHandle, buffer: Buffer, length: number, offset: number) {
  let filled = 0
  while (filled < length) {
    const { bytesRead } = await handle.read(buffer, filled, length - filled, offset + filled)
    if (bytesRead === 0) throw new Error(`the file ended early at ${offset + filled}`)
    filled += bytesRead
  }
  return buffer.subarray(0, length)
}

/** The SHA-256 of each `chunkSize` piece of `file`, read once through one reused buffer. */
export async function hashChunks(file: string, size: number, chunkSize: number): Promise<string[]> {
  const handle = await open(file, 'r')
  const buffer = Buffer.allocUnsafe(chunkSize)
  const hashes: string[] = []
  try {
    for (let offset = 0; offset < size; offset += chunkSize) {
      hashes.push(sha256Hex(await readFully(handle, buffer, Math.min(chunkSize, size - offset), offset)))
    }
  } finally {
    await handle.close()
  }
  return hashes
}

/** What a whole-upload client is told: where, as whom, which file, and how. */
export interface WholeUploadConfig {
  base: string
  token: string
  file: string
  chunkSize: number
  concurrency: number
}

/** A JSON call with `fetch`; throws unless the status is `expect`. */
export async function fetchJson<T>(
  url: string,
  init: { method: string; token: string; body?: unknown },
  expect: number,
): Promise<T> {
  const headers: Record<string, string> = { authorization: `Bearer ${init.token}` }
  if (init.body !== undefined) headers['content-type'] = 'application/json'
  const response = await fetch(url, {
    method: init.method,
    headers,
    body: init.body === undefined ? undefined : JSON.stringify(init.body),
  })
  const text = await response.text()
  if (response.status !== expect)
    throw new Error(`${init.method} ${url}: expected ${expect}, got ${response.status} ${text.slice(0, 300)}`)
  return (text === '' ? undefined : JSON.parse(text)) as T
}

export interface Session {
  uploadId: string
  totalChunks: number
  chunksNeeded: number[]
  chunksToProve: number[]
}

/** The session of a fresh upload: every chunk needed (content seen before would skew a figure). */
export function assertFresh(session: Session): void {
  if (session.chunksToProve.length > 0 || session.chunksNeeded.length !== session.totalChunks)
    throw new Error('the server holds some chunks already: the content is not fresh')
}

/** Process-wide monotonic clock in µs, the clock of V8's CPU profiles (bench/profile-upload.ts). */
export const monotonicMicros = (): number => Number(process.hrtime.bigint() / 1000n)

/** What every big-upload client reports: the whole upload as its user waits for it, and its parts. */
export interface WholeUploadResult {
  bytes: number
  /** From the first read of the file to the answer of `complete`. */
  ms: number
  hashMs: number
  initMs: number
  putsMs: number
  completeMs: number
  chunks: number
  fileId: string
  /** monotonicMicros() at the start and the end. */
  startMicros: number
  endMicros: number
}

/** The moments a whole upload passed, as `now()` read them, and when it started (monotonic µs). */
export interface UploadMoments {
  start: number
  hashed: number
  initiated: number
  put: number
  end: number
  startMicros: number
}

/** A whole upload's figures from the moments it passed; its end in µs is read now. */
export function wholeUploadResult(
  at: UploadMoments,
  file: { id: string; size: number },
  chunks: number,
): WholeUploadResult {
  return {
    bytes: file.size,
    ms: at.end - at.start,
    hashMs: at.hashed - at.start,
    initMs: at.initiated - at.hashed,
    putsMs: at.put - at.initiated,
    completeMs: at.end - at.put,
    chunks,
    fileId: file.id,
    startMicros: at.startMicros,
    endMicros: monotonicMicros(),
  }
}

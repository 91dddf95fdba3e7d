// Uploads one file to Tessera as a sync client would: hash the 4 MiB chunks (timed apart),
// then the session (init, the needed chunks streamed from the file with `concurrency` PUTs in
// flight, complete).
import { createReadStream } from 'node:fs'
import { open, stat } from 'node:fs/promises'
import { basename } from 'node:path'
import { Agent } from 'undici'
import { forEachConcurrently, sha256Hex, Tessera } from '../lib/api.js'
import { clientMain } from '../lib/child.js'
import { now } from '../lib/timing.js'

interface Config {
  base: string
  token: string
  file: string
  chunkSize: number
  concurrency: number
  folderId?: string | null
}

export interface TesseraUploadResult {
  bytes: number
  hashMs: number
  sessionMs: number
  initMs: number
  chunksMs: number
  completeMs: number
  totalChunks: number
  chunksUploaded: number
  fileId: string
  contentHash: string
}

/** The SHA-256 of each `chunkSize` piece, reading the file once through one reused buffer. */
async function hashChunks(file: string, size: number, chunkSize: number): Promise<string[]> {
  const handle = await open(file, 'r')
  const buffer = Buffer.allocUnsafe(chunkSize)
  const hashes: string[] = []
  try {
    for (let offset = 0; offset < size; offset += chunkSize) {
      const length = Math.min(chunkSize, size - offset)
      let filled = 0
      while (filled < length) {
        const { bytesRead } = await handle.read(buffer, filled, length - filled, offset + filled)
        if (bytesRead === 0) throw new Error(`${file} ended early at ${offset + filled}`)
        filled += bytesRead
      }
      hashes.push(sha256Hex(buffer.subarray(0, length)))
    }
  } finally {
    await handle.close()
  }
  return hashes
}

clientMain<Config, TesseraUploadResult>(async (config) => {
  const { size } = await stat(config.file)
  const dispatcher = new Agent({ connections: config.concurrency })
  const api = new Tessera(config.base, config.token, dispatcher)

  const hashStart = now()
  const hashes = await hashChunks(config.file, size, config.chunkSize)
  const hashMs = now() - hashStart

  const sessionStart = now()
  const session = await api.init({
    filename: `${basename(config.file)}-${Date.now()}`,
    size,
    chunkHashes: hashes,
    folderId: config.folderId ?? null,
  })
  const initMs = now() - sessionStart
  if (session.chunksToProve.length > 0)
    throw new Error('the server asked for proofs: the content is not fresh')
  const needed = session.chunksNeeded
  await forEachConcurrently(needed.length, config.concurrency, async (i) => {
    const index = needed[i]!
    const start = index * config.chunkSize
    const length = Math.min(config.chunkSize, size - start)
    const body = createReadStream(config.file, { start, end: start + length - 1 })
    await api.putChunk(session.uploadId, index, hashes[index]!, length, body)
  })
  const chunksDone = now()
  const { file } = await api.complete(session.uploadId)
  const sessionEnd = now()
  await dispatcher.close()
  if (file.size !== size) throw new Error(`the server made a file of ${file.size} bytes, not ${size}`)
  return {
    bytes: size,
    hashMs,
    sessionMs: sessionEnd - sessionStart,
    initMs,
    chunksMs: chunksDone - sessionStart - initMs,
    completeMs: sessionEnd - chunksDone,
    totalChunks: session.totalChunks,
    chunksUploaded: needed.length,
    fileId: file.id,
    contentHash: file.contentHash,
  }
})

// Small-file uploads per second: `concurrency` lanes, each uploading distinct 1 KiB files
// (init, chunk, complete) back to back over keep-alive connections, for a warm-up and then a
// measured window. Uploads that finish inside the window count.
import { randomBytes } from 'node:crypto'
import { Agent } from 'undici'
import { sha256Hex, Tessera } from '../lib/api.js'
import { clientMain } from '../lib/child.js'
import { measureWindow } from '../lib/timing.js'

interface Config {
  base: string
  token: string
  folderId: string | null
  size: number
  concurrency: number
  warmupMs: number
  durationMs: number
}

export interface SmallUploadsResult {
  uploads: number
  seconds: number
  perSecond: number
  p50Ms: number
  p99Ms: number
  warmupUploads: number
}

clientMain<Config, SmallUploadsResult>(async (config) => {
  const dispatcher = new Agent({ connections: config.concurrency })
  const api = new Tessera(config.base, config.token, dispatcher)
  const tag = randomBytes(4).toString('hex')
  const result = await measureWindow(config, async (lane, n) => {
    const bytes = randomBytes(config.size)
    const hash = sha256Hex(bytes)
    const session = await api.init({
      filename: `small-${tag}-${lane}-${n}.bin`,
      size: bytes.length,
      chunkHashes: [hash],
      folderId: config.folderId,
    })
    if (session.chunksNeeded.length !== 1) throw new Error('a fresh 1 KiB file should need its one chunk')
    await api.putChunk(session.uploadId, 0, hash, bytes.length, bytes)
    await api.complete(session.uploadId)
  })
  await dispatcher.close()
  const { count, warmupCount, ...rest } = result
  return { uploads: count, warmupUploads: warmupCount, ...rest }
})

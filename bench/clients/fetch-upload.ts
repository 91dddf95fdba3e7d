// Uploads one file to Tessera as an outside Node script would: Node 20's global `fetch`, Buffer
// bodies. Times the whole upload as its user waits for it: read + SHA-256 of each 4 MiB chunk,
// init, the chunk PUTs (`concurrency` in flight, each chunk read again into its own Buffer), and
// complete.
import { open, stat } from 'node:fs/promises'
import { basename } from 'node:path'
import { clientMain } from '../lib/child.js'
import {
  API_PREFIX,
  assertFresh,
  fetchJson,
  hashChunks,
  inLanes,
  monotonicMicros,
  readFully,
  type Session,
  type WholeUploadConfig,
  type WholeUploadResult,
  wholeUploadResult,
} from '../lib/outside-client.js'
import { now } from '../lib/timing.js'

type Config = WholeUploadConfig

async function putChunks(config: Config, session: Session, hashes: string[], size: number) {
  const handle = await open(config.file, 'r')
  try {
    await inLanes(session.chunksNeeded.length, config.concurrency, async (i) => {
      const index = session.chunksNeeded[i]!
      const offset = index * config.chunkSize
      const length = Math.min(config.chunkSize, size - offset)
      const body = await readFully(handle, Buffer.allocUnsafe(length), length, offset)
      const response = await fetch(`${config.base}${API_PREFIX}/upload/${session.uploadId}/chunk/${index}`, {
        method: 'PUT',
        headers: {
          authorization: `Bearer ${config.token}`,
          'content-type': 'application/octet-stream',
          'x-chunk-hash': hashes[index]!,
        },
        body,
      })
      const text = await response.text()
      if (response.status !== 200) throw new Error(`PUT chunk ${index}: ${response.status} ${text}`)
    })
  } finally {
    await handle.close()
  }
}

clientMain<Config, WholeUploadResult>(async (config) => {
  const { size } = await stat(config.file)
  const startMicros = monotonicMicros()
  const start = now()
  const hashes = await hashChunks(config.file, size, config.chunkSize)
  const hashed = now()
  const session = await fetchJson<Session>(
    `${config.base}${API_PREFIX}/upload/init`,
    {
      method: 'POST',
      token: config.token,
      body: { filename: `${basename(config.file)}-${Date.now()}`, size, chunkHashes: hashes },
    },
    201,
  )
  assertFresh(session)
  const initiated = now()
  await putChunks(config, session, hashes, size)
  const put = now()
  const { file } = await fetchJson<{ file: { id: string; size: number } }>(
    `${config.base}${API_PREFIX}/upload/${session.uploadId}/complete`,
    { method: 'POST', token: config.token },
    201,
  )
  const end = now()
  if (file.size !== size) throw new Error(`the server made a file of ${file.size} bytes, not ${size}`)
  return wholeUploadResult({ start, hashed, initiated, put, end, startMicros }, file, session.totalChunks)
})

// Small-file uploads per second from `concurrency` clients with plain `fetch`, each sending
// distinct random files back to back, for a warm-up and then a measured window (uploads that
// end inside the window count). Two ways to upload, as a sync client would:
//   one-request:   PUT /files/content?folderId=&name= with the bytes and X-Content-SHA256
//   three-request: POST /upload/init, PUT /upload/:id/chunk/0, POST /upload/:id/complete
// When the server has no one-request upload (404 or 405 on the first try), the result says so.
import { randomBytes } from 'node:crypto'
import { clientMain } from '../lib/child.js'
import { API_PREFIX, assertFresh, fetchJson, type Session, sha256Hex } from '../lib/outside-client.js'
import { measureWindow, type WindowResult } from '../lib/timing.js'

export type SmallUploadMode = 'one-request' | 'three-request'

interface Config {
  base: string
  token: string
  folderId: string
  mode: SmallUploadMode
  size: number
  concurrency: number
  warmupMs: number
  durationMs: number
}

export type SmallFilesResult = (WindowResult & { available: true }) | { available: false; why: string }

class NotAvailable extends Error {}

async function oneRequest(config: Config, name: string, bytes: Buffer): Promise<void> {
  const query = `folderId=${encodeURIComponent(config.folderId)}&name=${encodeURIComponent(name)}`
  const response = await fetch(`${config.base}${API_PREFIX}/files/content?${query}`, {
    method: 'PUT',
    headers: {
      authorization: `Bearer ${config.token}`,
      'content-type': 'application/octet-stream',
      'x-content-sha256': sha256Hex(bytes),
    },
    body: bytes,
  })
  const text = await response.text()
  if (response.status === 404 || response.status === 405)
    throw new NotAvailable(`PUT /files/content answered ${response.status} ${text.slice(0, 200)}`)
  if (response.status !== 201) throw new Error(`PUT /files/content: ${response.status} ${text.slice(0, 300)}`)
}

async function threeRequests(config: Config, name: string, bytes: Buffer): Promise<void> {
  const url = `${config.base}${API_PREFIX}/upload`
  const hash = sha256Hex(bytes)
  const body = { filename: name, size: bytes.length, chunkHashes: [hash], folderId: config.folderId }
  const session = await fetchJson<Session>(`${url}/init`, { method: 'POST', token: config.token, body }, 201)
  assertFresh(session)
  const response = await fetch(`${url}/${session.uploadId}/chunk/0`, {
    method: 'PUT',
    headers: {
      authorization: `Bearer ${config.token}`,
      'content-type': 'application/octet-stream',
      'x-chunk-hash': hash,
    },
    body: bytes,
  })
  const text = await response.text()
  if (response.status !== 200) throw new Error(`PUT chunk: ${response.status} ${text.slice(0, 300)}`)
  await fetchJson(`${url}/${session.uploadId}/complete`, { method: 'POST', token: config.token }, 201)
}

clientMain<Config, SmallFilesResult>(async (config) => {
  const upload = config.mode === 'one-request' ? oneRequest : threeRequests
  const tag = randomBytes(4).toString('hex')
  try {
    await upload(config, `probe-${tag}.bin`, randomBytes(config.size))
    const result = await measureWindow(config, (lane, n) =>
      upload(config, `small-${tag}-${lane}-${n}.bin`, randomBytes(config.size)),
    )
    return { available: true, ...result }
  } catch (error) {
    if (error instanceof NotAvailable) return { available: false, why: error.message }
    throw error
  }
})

import { createHash, randomBytes } from 'node:crypto'
import http from 'node:http'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { ApiClient, CHUNK, MiB, type Reply, sha256 } from '../helpers/api-client.js'
import { DATABASES } from '../helpers/databases.js'
import { startTestServer, type TestServer } from '../helpers/test-server.js'

/**
 * API.md: "Sizes up to at least 10 GiB must work with memory that does not grow with file
 * size." The file is 2,560 chunks of 4 MiB built from a few distinct random buffers, so the
 * test needs neither 10 GiB of disk nor of upload: the client uploads each distinct chunk
 * once and the server deduplicates the rest. The metadata (2,560 chunk rows per session and
 * per version) and the download (10 GiB streamed through the server) are real.
 */
const GiB = 1024 ** 3
const TOTAL_CHUNKS = 2560
const SIZE = TOTAL_CHUNKS * CHUNK
/** Growth of the process's resident memory allowed while 10 GiB stream through it. */
const MAX_RSS_GROWTH = 200 * MiB

// Three buffers in a repeating pattern (so chunks served in the wrong order change the
// hash), and a fourth only at the very end (so the last chunk boundary is recognisable).
const PATTERN = [randomBytes(CHUNK), randomBytes(CHUNK), randomBytes(CHUNK)]
const LAST = randomBytes(CHUNK)
const chunkAt = (index: number): Buffer =>
  index === TOTAL_CHUNKS - 1 ? LAST : (PATTERN[index % PATTERN.length] as Buffer)
const PATTERN_HASHES = PATTERN.map(sha256)
const LAST_HASH = sha256(LAST)
const hashAt = (index: number): string =>
  index === TOTAL_CHUNKS - 1 ? LAST_HASH : (PATTERN_HASHES[index % PATTERN.length] as string)

/** The bytes [start, end] of the file, assembled from the chunk buffers. */
function slice(start: number, end: number): Buffer {
  const parts: Buffer[] = []
  for (let offset = start; offset <= end; ) {
    const index = Math.floor(offset / CHUNK)
    const from = offset - index * CHUNK
    const to = Math.min(CHUNK, end - index * CHUNK + 1)
    parts.push(chunkAt(index).subarray(from, to))
    offset = index * CHUNK + to
  }
  return Buffer.concat(parts)
}

let expectedSha256: string | undefined
/** SHA-256 of the whole 10 GiB, computed once from the buffers (about 6 s). */
function expectedDigest(): string {
  if (expectedSha256 === undefined) {
    const hash = createHash('sha256')
    for (let index = 0; index < TOTAL_CHUNKS; index++) hash.update(chunkAt(index))
    expectedSha256 = hash.digest('hex')
  }
  return expectedSha256
}

interface StreamedDownload {
  status: number
  headers: http.IncomingHttpHeaders
  bytes: number
  sha256: string
  /** Highest `process.memoryUsage().rss` seen while the body streamed. */
  peakRss: number
}

/**
 * GETs a URL and hashes the body as it arrives, never holding it: the server runs in this
 * process, so the resident memory sampled here is the server's and the client's together.
 */
function streamDownload(url: string, token: string, headers: Record<string, string> = {}) {
  return new Promise<StreamedDownload>((resolve, reject) => {
    let peakRss = process.memoryUsage().rss
    const sample = () => {
      peakRss = Math.max(peakRss, process.memoryUsage().rss)
    }
    // Sampled on a timer and every 64 MiB of body, whichever comes more often.
    const timer = setInterval(sample, 25)
    const request = http.get(url, { headers: { authorization: `Bearer ${token}`, ...headers } }, (res) => {
      const hash = createHash('sha256')
      let bytes = 0
      let sinceSample = 0
      res.on('data', (piece: Buffer) => {
        hash.update(piece)
        bytes += piece.length
        sinceSample += piece.length
        if (sinceSample >= 64 * MiB) {
          sinceSample = 0
          sample()
        }
      })
      res.on('end', () => {
        clearInterval(timer)
        sample()
        resolve({
          status: res.statusCode ?? 0,
          headers: res.headers,
          bytes,
          sha256: hash.digest('hex'),
          peakRss,
        })
      })
      res.on('error', (error) => {
        clearInterval(timer)
        reject(error)
      })
    })
    request.on('error', (error) => {
      clearInterval(timer)
      reject(error)
    })
  })
}

/** What uploading the file answered, for the test that checks it. */
interface HugeUpload {
  init: Reply
  /** The PUT statuses, one per distinct chunk, in the order sent. */
  puts: Array<{ index: number; status: number }>
  check: Reply
  done: Reply
  fileId: string
}

/** Uploads the file, sending each distinct chunk once (one PUT per distinct hash). */
async function uploadHugeFile(client: ApiClient): Promise<HugeUpload> {
  const chunkHashes = Array.from({ length: TOTAL_CHUNKS }, (_, index) => hashAt(index))
  const init = await client.post('/upload/init', { filename: 'huge.bin', size: SIZE, chunkHashes })
  const id = init.body.uploadId
  const firstOfEach = new Map<string, number>()
  chunkHashes.forEach((hash, index) => {
    if (!firstOfEach.has(hash)) firstOfEach.set(hash, index)
  })
  const puts: HugeUpload['puts'] = []
  for (const index of firstOfEach.values()) {
    puts.push({ index, status: (await client.putChunk(id, index, chunkAt(index))).status })
  }
  const check = await client.post(`/upload/${id}/check`)
  const done = await client.post(`/upload/${id}/complete`)
  return { init, puts, check, done, fileId: done.body?.file?.id }
}

describe.each(DATABASES)('a 10 GiB file on %s', ({ name: backend, available }) => {
  let server: TestServer
  let ann: ApiClient
  let uploading: Promise<HugeUpload> | undefined
  /**
   * The file, uploaded by whichever test first needs it, so that each test also runs alone
   * (`-t`) or in any order; the upload test checks every answer.
   */
  const uploaded = () => {
    uploading ??= uploadHugeFile(ann)
    return uploading
  }
  const uploadedFileId = async () => {
    const { done, fileId } = await uploaded()
    expect(done.status).toBe(201)
    return fileId
  }

  beforeAll(async () => {
    if (!available) return
    server = await startTestServer(backend)
    ann = await new ApiClient(server.api).register()
  })
  afterAll(async () => server?.stop())

  it.skipIf(!available)(
    'uploads as 2,560 chunks, sending each distinct chunk once',
    async () => {
      const { init, puts, check, done, fileId } = await uploaded()
      expect(init.status).toBe(201)
      expect(init.body).toMatchObject({ chunkSize: CHUNK, totalChunks: TOTAL_CHUNKS, chunksExisting: 0 })
      // Nothing is held yet: every index is needed, though only four distinct byte strings are.
      expect(init.body.chunksNeeded).toHaveLength(TOTAL_CHUNKS)

      // One PUT per distinct hash covers every index that has it.
      expect(puts.map((put) => put.index)).toEqual([0, 1, 2, TOTAL_CHUNKS - 1])
      for (const put of puts) expect(put.status).toBe(200)
      expect(check.status).toBe(200)
      expect(check.body).toMatchObject({ chunksNeeded: [], chunksToProve: [], chunksExisting: TOTAL_CHUNKS })

      expect(done.status).toBe(201)
      expect(done.body.file).toMatchObject({ name: 'huge.bin', size: 10 * GiB, version: 1 })

      const file = await ann.get(`/files/${fileId}`)
      expect(file.status).toBe(200)
      expect(file.body).toMatchObject({ id: fileId, size: 10 * GiB, version: 1 })
      // 10 GiB is exactly the default quota: it fits, and fills it.
      expect((await ann.get('/auth/me')).body.user).toMatchObject({
        usedBytes: 10 * GiB,
        quotaBytes: 10 * GiB,
      })
    },
    120_000,
  )

  it.skipIf(!available)(
    'serves byte ranges across the last chunk boundary exactly',
    async () => {
      const fileId = await uploadedFileId()
      // 1 MiB straddling the boundary between chunk 2558 and the distinct last chunk.
      const start = SIZE - CHUNK - 512 * 1024
      const end = start + MiB - 1
      const straddling = await ann.download(fileId, { range: `bytes=${start}-${end}` })
      expect(straddling.status).toBe(206)
      expect(straddling.headers.get('content-range')).toBe(`bytes ${start}-${end}/${SIZE}`)
      expect(straddling.body.length).toBe(MiB)
      expect(sha256(straddling.body)).toBe(sha256(slice(start, end)))

      // An open-ended range from inside chunk 2557 to the end, and a suffix range.
      const from = SIZE - 2 * CHUNK - 12345
      const tail = await ann.download(fileId, { range: `bytes=${from}-` })
      expect(tail.status).toBe(206)
      expect(tail.headers.get('content-range')).toBe(`bytes ${from}-${SIZE - 1}/${SIZE}`)
      expect(sha256(tail.body)).toBe(sha256(slice(from, SIZE - 1)))

      const suffix = await ann.download(fileId, { range: 'bytes=-1048577' })
      expect(suffix.status).toBe(206)
      expect(suffix.headers.get('content-range')).toBe(`bytes ${SIZE - MiB - 1}-${SIZE - 1}/${SIZE}`)
      expect(sha256(suffix.body)).toBe(sha256(slice(SIZE - MiB - 1, SIZE - 1)))
    },
    // The upload's time too, when this test runs alone.
    180_000,
  )

  it.skipIf(!available)(
    'downloads all 10 GiB streamed, byte-exact, in memory that does not grow with the size',
    async () => {
      const fileId = await uploadedFileId()
      const expected = expectedDigest()
      const baseline = process.memoryUsage().rss
      const download = await streamDownload(`${server.api}/files/${fileId}/download`, ann.token as string)
      expect(download.status).toBe(200)
      expect(download.headers['content-length']).toBe(String(SIZE))
      expect(download.bytes).toBe(SIZE)
      expect(download.sha256).toBe(expected)
      // Buffered, the growth would be about 10 GiB.
      expect(download.peakRss - baseline).toBeLessThan(MAX_RSS_GROWTH)
    },
    // The upload's time too, when this test runs alone.
    360_000,
  )
})

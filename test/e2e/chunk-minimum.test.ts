import { randomBytes } from 'node:crypto'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { ApiClient, sha256 } from '../helpers/api-client.js'
import { DATABASES } from '../helpers/databases.js'
import { type PlainReply, plainRequest, uploadRowsOf } from '../helpers/plain-requests.js'
import { startTestServer, type TestServer } from '../helpers/test-server.js'

/**
 * Every declared chunk but a file's last is at least UPLOAD_MIN_CHUNK_BYTES (64 KiB unset). A
 * file's work (its download, its complete, its declaration) grows with its chunks, not its bytes:
 * without the floor, 65,536 one-byte chunks of one hash (one PUT of 1 byte, 64 KiB of quota)
 * made a file that took 80 s to download and stalled every other request meanwhile.
 */
const MIN = 64 * 1024
const MAX_CHUNKS = 65_536

function expectTooSmall(reply: PlainReply, index: number): void {
  expect(reply.status, JSON.stringify(reply.body).slice(0, 300)).toBe(400)
  expect(reply.body).toMatchObject({ error: { code: 'INVALID_REQUEST', index } })
  expect(reply.body.error.message).toContain(`chunkSizes[${index}]`)
  expect(reply.body.error.message).toContain(`at least ${MIN} bytes`)
}

describe.each(DATABASES)('the least chunk size on %s', ({ name: backend, available }) => {
  let server: TestServer

  beforeAll(async () => {
    // Unset (the test helper's default is 1 byte): production's default minimum.
    if (available)
      server = await startTestServer(backend, { UPLOAD_MIN_CHUNK_BYTES: '', GC_INTERVAL_SECONDS: '0' })
  })
  afterAll(async () => server?.stop())

  const fresh = () => new ApiClient(server.api).register()
  const init = (client: ApiClient, body: Record<string, unknown>) =>
    plainRequest(server.api, 'POST', '/upload/init', client.token, body)

  /** Nothing of a refused init remains: no session, no chunk rows, no quota held. */
  async function expectNothingRecorded(client: ApiClient): Promise<void> {
    expect(await uploadRowsOf(server, client.user.id)).toEqual({ sessions: 0, chunks: 0 })
    expect(await client.usedBytes()).toBe(0)
  }

  /** Declares `bytes` cut at `sizes`, sends every chunk with plain fetch, completes, downloads. */
  async function roundTrip(client: ApiClient, sizes: number[]): Promise<void> {
    const bytes = randomBytes(sizes.reduce((a, b) => a + b, 0))
    const parts = sizes.map((_, i) => {
      const start = sizes.slice(0, i).reduce((a, b) => a + b, 0)
      return bytes.subarray(start, start + (sizes[i] as number))
    })
    const started = await init(client, {
      filename: `cut-${sizes.join('-')}.bin`,
      size: bytes.length,
      chunkHashes: parts.map(sha256),
      chunkSizes: sizes,
    })
    expect(started.status, JSON.stringify(started.body).slice(0, 300)).toBe(201)
    expect(started.body.chunksNeeded).toEqual(sizes.map((_, i) => i))
    for (const [i, part] of parts.entries()) {
      const put = await fetch(`${server.api}/upload/${started.body.uploadId}/chunk/${i}`, {
        method: 'PUT',
        headers: { authorization: `Bearer ${client.token}`, 'x-chunk-hash': sha256(part) },
        body: part,
      })
      expect(put.status).toBe(200)
    }
    const done = await plainRequest(
      server.api,
      'POST',
      `/upload/${started.body.uploadId}/complete`,
      client.token,
    )
    expect(done.status, JSON.stringify(done.body)).toBe(201)
    const download = await fetch(`${server.api}/files/${done.body.file.id}/download`, {
      headers: { authorization: `Bearer ${client.token}` },
    })
    expect(download.status).toBe(200)
    expect(Buffer.from(await download.arrayBuffer()).equals(bytes)).toBe(true)
  }

  it.skipIf(!available)(
    `refuses ${MAX_CHUNKS} one-byte chunks of one hash with 400 naming chunk 0, recording nothing`,
    async () => {
      const ann = await fresh()
      const hash = sha256(Buffer.from('x'))
      const reply = await init(ann, {
        filename: 'tiny-chunks.bin',
        size: MAX_CHUNKS,
        chunkHashes: Array<string>(MAX_CHUNKS).fill(hash),
        chunkSizes: Array<number>(MAX_CHUNKS).fill(1),
      })
      expectTooSmall(reply, 0)
      await expectNothingRecorded(ann)
    },
  )

  it.skipIf(!available)('refuses a first chunk one byte under the minimum, naming index 0', async () => {
    const ann = await fresh()
    const parts = [randomBytes(MIN - 1), randomBytes(MIN)]
    const reply = await init(ann, {
      filename: 'short-first.bin',
      size: 2 * MIN - 1,
      chunkHashes: parts.map(sha256),
      chunkSizes: parts.map((part) => part.length),
    })
    expectTooSmall(reply, 0)
    await expectNothingRecorded(ann)
  })

  it.skipIf(!available)('takes a last chunk under the minimum, and a file of one small chunk', async () => {
    const ann = await fresh()
    await roundTrip(ann, [MIN, 1])
    await roundTrip(ann, [MIN, MIN, MIN - 1])
    await roundTrip(ann, [1])
  })

  it.skipIf(!available)('takes chunks of exactly the minimum', async () => {
    await roundTrip(await fresh(), [MIN, MIN, MIN])
  })

  it.skipIf(!available)(
    'takes fixed-size declarations (4 MiB chunks), one chunk or a short last one',
    async () => {
      const ann = await fresh()
      for (const size of [1, 5000, 4 * 1024 * 1024, 4 * 1024 * 1024 + 1]) {
        const bytes = randomBytes(size)
        const file = await ann.upload(`fixed-${size}.bin`, bytes)
        expect(file.size).toBe(size)
        expect((await ann.download(file.id)).body.equals(bytes)).toBe(true)
      }
    },
  )
})

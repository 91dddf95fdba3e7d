import { randomBytes, randomUUID } from 'node:crypto'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { copiesOnDisk } from '../gc/gc-helpers.js'
import { ApiClient, CHUNK, chunksOf, hmac, MiB, sha256 } from '../helpers/api-client.js'
import { DATABASES } from '../helpers/databases.js'
import { startTestServer, type TestServer } from '../helpers/test-server.js'

const GiB = 1024 ** 3

describe.each(DATABASES)('uploads on %s', ({ name: backend, available }) => {
  let server: TestServer
  let ann: ApiClient
  let bob: ApiClient
  const fresh = () => new ApiClient(server.api).register()

  beforeAll(async () => {
    if (!available) return
    server = await startTestServer(backend)
    ann = await fresh()
    bob = await fresh()
  })
  afterAll(async () => server?.stop())

  it.skipIf(!available)('uploads a multi-chunk file and downloads it byte-identical', async () => {
    const bytes = randomBytes(2 * CHUNK + 12345)
    const init = await ann.init('big.bin', bytes)
    expect(init.status).toBe(201)
    expect(init.body).toMatchObject({
      chunkSize: CHUNK,
      totalChunks: 3,
      chunksNeeded: [0, 1, 2],
      chunksExisting: 0,
    })
    expect(init.body.chunksToProve).toEqual([])
    expect(init.body.proofNonce).toMatch(/^[0-9a-f]{32,}$/)
    expect(Date.parse(init.body.expiresAt) - Date.now()).toBeGreaterThan(23 * 3600_000)

    const chunks = chunksOf(bytes)
    // Out of order, as a parallel client would send them.
    for (const index of [2, 0, 1]) {
      const put = await ann.putChunk(init.body.uploadId, index, chunks[index] as Buffer)
      expect(put.status).toBe(200)
      expect(put.body).toEqual({ index, hash: sha256(chunks[index] as Buffer), deduplicated: false })
    }
    const check = await ann.post(`/upload/${init.body.uploadId}/check`)
    expect(check.body).toMatchObject({ chunksNeeded: [], chunksExisting: 3 })
    const done = await ann.post(`/upload/${init.body.uploadId}/complete`)
    expect(done.status).toBe(201)
    expect(done.body.conflict).toBe(false)
    expect(done.body.file).toMatchObject({ name: 'big.bin', folderId: null, size: bytes.length, version: 1 })
    expect(done.body.file.contentHash).toMatch(/^[0-9a-f]{64}$/)

    const download = await ann.download(done.body.file.id)
    expect(download.status).toBe(200)
    expect(download.body.equals(bytes)).toBe(true)
    expect(download.headers.get('etag')).toBe(`"${done.body.file.contentHash}"`)
    // The session is gone once the file exists.
    expect((await ann.post(`/upload/${init.body.uploadId}/check`)).status).toBe(404)
  })

  it.skipIf(!available)('uploads an empty file', async () => {
    const file = await ann.upload('empty.txt', Buffer.alloc(0))
    expect(file).toMatchObject({ size: 0, version: 1 })
    const download = await ann.download(file.id)
    expect(download.status).toBe(200)
    expect(download.body.length).toBe(0)
  })

  it.skipIf(!available)("deduplicates the caller's own chunks without upload or proof", async () => {
    const bytes = randomBytes(CHUNK + 10)
    await ann.upload('original.bin', bytes)
    const again = await ann.init('copy.bin', bytes)
    expect(again.body).toMatchObject({ chunksNeeded: [], chunksToProve: [], chunksExisting: 2 })
    const done = await ann.post(`/upload/${again.body.uploadId}/complete`)
    expect(done.status).toBe(201)
    expect((await ann.download(done.body.file.id)).body.equals(bytes)).toBe(true)
  })

  it.skipIf(!available)(
    'across users: a hash alone gets nothing, a proof of possession completes',
    async () => {
      const bytes = randomBytes(CHUNK + 77)
      await ann.upload('secret.bin', bytes)
      const chunks = chunksOf(bytes)

      // Bob knows only the hashes: nothing to upload, but everything to prove.
      const guess = await bob.init('stolen.bin', bytes)
      expect(guess.body).toMatchObject({ chunksNeeded: [], chunksToProve: [0, 1], chunksExisting: 2 })
      const refused = await bob.post(`/upload/${guess.body.uploadId}/complete`)
      expect(refused.status).toBe(409)
      expect(refused.body.error.code).toBe('CHUNKS_MISSING')
      expect(refused.body.error.missing).toEqual([0, 1])
      const badProof = await bob.post(`/upload/${guess.body.uploadId}/prove`, {
        proofs: { 0: hmac(guess.body.proofNonce, Buffer.from('not the bytes')) },
      })
      expect(badProof.status).toBe(400)
      expect(badProof.body.error.code).toBe('PROOF_INVALID')
      // A proof computed with a hash instead of the bytes is worthless too.
      const hashProof = await bob.post(`/upload/${guess.body.uploadId}/prove`, {
        proofs: { 1: hmac(guess.body.proofNonce, Buffer.from(sha256(chunks[1] as Buffer), 'hex')) },
      })
      expect(hashProof.status).toBe(400)
      expect((await bob.post(`/upload/${guess.body.uploadId}/complete`)).status).toBe(409)

      // Carol has the bytes: she proves chunk 0 and uploads chunk 1 (which dedups).
      const carol = await fresh()
      const init = await carol.init('mine.bin', bytes)
      const proved = await carol.post(`/upload/${init.body.uploadId}/prove`, {
        proofs: { 0: hmac(init.body.proofNonce, chunks[0] as Buffer) },
      })
      expect(proved.status).toBe(200)
      expect(proved.body.chunksToProve).toEqual([1])
      const put = await carol.putChunk(init.body.uploadId, 1, chunks[1] as Buffer)
      expect(put.body.deduplicated).toBe(true)
      const done = await carol.post(`/upload/${init.body.uploadId}/complete`)
      expect(done.status).toBe(201)
      expect((await carol.download(done.body.file.id)).body.equals(bytes)).toBe(true)
    },
  )

  it.skipIf(!available)('stores nothing when the bytes do not match the hash', async () => {
    const bytes = randomBytes(1000)
    const init = await ann.init('bad.bin', bytes)
    const tampered = Buffer.from(bytes)
    tampered[0] = (tampered[0] as number) ^ 0xff
    const lying = await ann.putChunk(init.body.uploadId, 0, tampered, sha256(bytes))
    expect(lying.status).toBe(400)
    expect(lying.body.error.code).toBe('HASH_MISMATCH')
    const otherHash = await ann.putChunk(init.body.uploadId, 0, tampered, sha256(tampered))
    expect(otherHash.status).toBe(400)
    expect(otherHash.body.error.code).toBe('HASH_MISMATCH')
    // Still needed, and another user is told the server does not hold it.
    expect((await ann.post(`/upload/${init.body.uploadId}/check`)).body.chunksNeeded).toEqual([0])
    expect((await bob.init('probe.bin', bytes)).body.chunksNeeded).toEqual([0])
    // No copy of either hash, under any generation.
    expect(await copiesOnDisk(server.dataDir, sha256(bytes))).toEqual([])
    expect(await copiesOnDisk(server.dataDir, sha256(tampered))).toEqual([])
  })

  it.skipIf(!available)(
    'rejects wrong lengths and indexes, and completes only when all chunks are in',
    async () => {
      const bytes = randomBytes(CHUNK + 100)
      const chunks = chunksOf(bytes)
      const init = await ann.init('partial.bin', bytes)
      const id = init.body.uploadId
      const short = await ann.putChunk(
        id,
        1,
        (chunks[1] as Buffer).subarray(0, 50),
        sha256(chunks[1] as Buffer),
      )
      expect(short.status).toBe(400)
      expect(short.body.error.code).toBe('CHUNK_SIZE_MISMATCH')
      for (const index of ['2', '-1', 'x', '1.5', '99999999999']) {
        const reply = await ann.request('PUT', `/upload/${id}/chunk/${index}`, chunks[1] as Buffer, {
          'x-chunk-hash': sha256(chunks[1] as Buffer),
        })
        expect(reply.status, index).toBe(400)
        expect(reply.body.error.code).toBe('INVALID_CHUNK_INDEX')
      }
      const noHash = await ann.request('PUT', `/upload/${id}/chunk/1`, chunks[1] as Buffer)
      expect(noHash.status).toBe(400)
      expect((await ann.putChunk(id, 1, chunks[1] as Buffer)).status).toBe(200)
      const missing = await ann.post(`/upload/${id}/complete`)
      expect(missing.status).toBe(409)
      expect(missing.body).toMatchObject({ error: { code: 'CHUNKS_MISSING', missing: [0] }, missing: [0] })
      // The same chunk twice is fine.
      expect((await ann.putChunk(id, 0, chunks[0] as Buffer)).status).toBe(200)
      expect((await ann.putChunk(id, 0, chunks[0] as Buffer)).status).toBe(200)
      expect((await ann.post(`/upload/${id}/complete`)).status).toBe(201)
    },
  )

  it.skipIf(!available)(
    'two sessions uploading the same chunk at once both succeed and store it once',
    async () => {
      const bytes = randomBytes(3 * MiB)
      const [a, b] = await Promise.all([ann.init('race-a.bin', bytes), bob.init('race-b.bin', bytes)])
      expect(a.body.chunksNeeded).toEqual([0])
      expect(b.body.chunksNeeded).toEqual([0])
      const puts = await Promise.all([
        ann.putChunk(a.body.uploadId, 0, bytes),
        bob.putChunk(b.body.uploadId, 0, bytes),
      ])
      expect(puts.map((p) => p.status)).toEqual([200, 200])
      const done = await Promise.all([
        ann.post(`/upload/${a.body.uploadId}/complete`),
        bob.post(`/upload/${b.body.uploadId}/complete`),
      ])
      expect(done.map((d) => d.status)).toEqual([201, 201])
      const chunk = await server.services.meta.chunks.find(sha256(bytes))
      expect(chunk).toMatchObject({ size: bytes.length, refCount: 2 })
      expect((await bob.download(done[1].body.file.id)).body.equals(bytes)).toBe(true)
    },
  )

  it.skipIf(!available)(
    'makes a new version when uploading to an existing name; usedBytes stays exact',
    async () => {
      const carol = await fresh()
      const v1 = await carol.upload('notes.txt', Buffer.from('first version'))
      const v2 = await carol.upload('notes.txt', Buffer.from('second, longer version'))
      expect(v2.id).toBe(v1.id)
      expect(v2.version).toBe(2)
      expect((await carol.download(v1.id)).body.toString()).toBe('second, longer version')
      await carol.upload('other.txt', Buffer.from('12345'))
      expect(await carol.usedBytes()).toBe('second, longer version'.length + 5)
      const old = await carol.get(`/files/${v1.id}/versions/1/download`)
      expect(old.body.toString()).toBe('first version')
    },
  )

  it.skipIf(!available)('keeps both writes when baseVersion is stale: a conflicted copy', async () => {
    const carol = await fresh()
    const v1 = await carol.upload('plan.txt', Buffer.from('v1'))
    await carol.upload('plan.txt', Buffer.from('v2 from laptop'), { baseVersion: 1 })
    const init = await carol.init('plan.txt', Buffer.from('v2 from phone'), { baseVersion: 1 })
    await carol.putChunk(init.body.uploadId, 0, Buffer.from('v2 from phone'))
    const done = await carol.post(`/upload/${init.body.uploadId}/complete`)
    expect(done.status).toBe(201)
    expect(done.body.conflict).toBe(true)
    expect(done.body.file.id).not.toBe(v1.id)
    expect(done.body.file.name).toMatch(/^plan \(conflicted copy \d{4}-\d{2}-\d{2}\)\.txt$/)
    expect((await carol.download(v1.id)).body.toString()).toBe('v2 from laptop')
    expect((await carol.download(done.body.file.id)).body.toString()).toBe('v2 from phone')
  })

  it.skipIf(!available)('accepts variable chunk sizes within the contract and rejects the rest', async () => {
    const bytes = randomBytes(5000)
    const sizes = [1000, 3000, 1000]
    const parts = [bytes.subarray(0, 1000), bytes.subarray(1000, 4000), bytes.subarray(4000)]
    const init = await ann.post('/upload/init', {
      filename: 'cdc.bin',
      size: 5000,
      chunkHashes: parts.map(sha256),
      chunkSizes: sizes,
    })
    expect(init.status).toBe(201)
    expect(init.body.totalChunks).toBe(3)
    for (const [i, part] of parts.entries()) await ann.putChunk(init.body.uploadId, i, part)
    const done = await ann.post(`/upload/${init.body.uploadId}/complete`)
    expect((await ann.download(done.body.file.id)).body.equals(bytes)).toBe(true)
  })

  it.skipIf(!available)('rejects every malformed init with 400 and stores nothing', async () => {
    const h = sha256(Buffer.from('x'))
    const cases: Array<Record<string, unknown>> = [
      { size: 1, chunkHashes: [h] },
      { filename: 'a', chunkHashes: [h] },
      { filename: 'a', size: -1, chunkHashes: [] },
      { filename: 'a', size: 1.5, chunkHashes: [h] },
      { filename: 'a', size: '1', chunkHashes: [h] },
      { filename: 'a', size: 1e30, chunkHashes: [h] },
      { filename: 'a', size: 1, chunkHashes: [] },
      { filename: 'a', size: 1, chunkHashes: [h, h] },
      { filename: 'a', size: CHUNK + 1, chunkHashes: [h] },
      { filename: 'a', size: 1, chunkHashes: ['xyz'] },
      { filename: 'a', size: 1, chunkHashes: [h.toUpperCase()] },
      { filename: 'a', size: 1, chunkHashes: 'nope' },
      { filename: 'a', size: 2, chunkHashes: [h, h], chunkSizes: [1] },
      { filename: 'a', size: 3, chunkHashes: [h, h], chunkSizes: [1, 1] },
      { filename: 'a', size: 17 * MiB, chunkHashes: [h], chunkSizes: [17 * MiB] },
      { filename: 'a', size: 1, chunkHashes: [h], chunkSizes: [0, 1] },
      { filename: 'a', size: 1, chunkHashes: [h], folderId: 'not-an-id' },
      { filename: 'a', size: 1, chunkHashes: [h], baseVersion: 0 },
      { filename: 'a/b', size: 1, chunkHashes: [h] },
      { filename: '..', size: 1, chunkHashes: [h] },
    ]
    for (const body of cases) {
      const reply = await ann.post('/upload/init', body)
      expect(reply.status, JSON.stringify(body)).toBe(400)
      expect(reply.body.error.message.length).toBeGreaterThan(0)
    }
    const foreignFolder = (await bob.post('/folders', { name: 'bobs' })).body.id
    const intoForeign = await ann.post('/upload/init', {
      filename: 'a',
      size: 1,
      chunkHashes: [h],
      folderId: foreignFolder,
    })
    expect(intoForeign.status).toBe(404)
    const unknownFolder = await ann.post('/upload/init', {
      filename: 'a',
      size: 1,
      chunkHashes: [h],
      folderId: randomUUID(),
    })
    expect(unknownFolder.status).toBe(404)
  })

  it.skipIf(!available)('refuses a file beyond the free quota at init with 507', async () => {
    const size = 11 * GiB
    const hashes = Array.from({ length: Math.ceil(size / CHUNK) }, () => sha256(Buffer.from('x')))
    const reply = await ann.post('/upload/init', { filename: 'huge.bin', size, chunkHashes: hashes })
    expect(reply.status).toBe(507)
    expect(reply.body.error.code).toBe('QUOTA_EXCEEDED')
  })

  it.skipIf(!available)('aborts, expires after 24 h, and hides sessions from other users', async () => {
    const bytes = Buffer.from('abort me')
    const aborted = await ann.init('abort.txt', bytes)
    expect((await bob.post(`/upload/${aborted.body.uploadId}/check`)).status).toBe(404)
    expect((await bob.delete(`/upload/${aborted.body.uploadId}`)).status).toBe(404)
    expect((await ann.delete(`/upload/${aborted.body.uploadId}`)).status).toBe(204)
    const gone = await ann.post(`/upload/${aborted.body.uploadId}/check`)
    expect(gone.status).toBe(404)
    expect(gone.body.error.code).toBe('UPLOAD_NOT_FOUND')
    expect((await ann.post('/upload/not-a-uuid/check')).status).toBe(404)

    const expiring = await ann.init('expire.txt', bytes)
    server.advance(24 * 3600_000 + 1000)
    const expired = await ann.putChunk(expiring.body.uploadId, 0, bytes)
    expect(expired.status).toBe(404)
    expect(expired.body.error.code).toBe('UPLOAD_NOT_FOUND')
    expect(await server.services.uploads.sweepExpired()).toBeGreaterThanOrEqual(1)
    expect(await server.services.meta.uploads.chunks(expiring.body.uploadId)).toEqual([])
  })
})

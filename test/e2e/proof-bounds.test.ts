import { randomBytes } from 'node:crypto'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { ApiClient, hmac, sha256 } from '../helpers/api-client.js'
import { DATABASES } from '../helpers/databases.js'
import { plainRequest } from '../helpers/plain-requests.js'
import { startTestServer, type TestServer } from '../helpers/test-server.js'

/**
 * Proof of possession without amplification (issue: hostile clients): a `prove` that names one
 * stored chunk a thousand times reads and hashes it once; a proof sent again, right or wrong, is
 * not hashed again; and a request carries a bounded number of proofs. What the server reads is
 * observed at its blob store (a count of reads of the chunk), not by timing.
 */

/** The per-request bound (services/uploads/proofs.ts MAX_PROOFS_PER_REQUEST). */
const MAX_PROOFS = 1_024
const CHUNK_BYTES = 64 * 1024

describe.each(DATABASES)('proof bounds on %s', ({ name: backend, available }) => {
  let server: TestServer
  let reads: Map<string, number>
  let restore: () => void
  beforeAll(async () => {
    if (!available) return
    server = await startTestServer(backend, { GC_INTERVAL_SECONDS: '0' })
    // Counts the reads of each chunk's stored bytes, by hash.
    const blobs = server.services.blobs
    const get = blobs.get.bind(blobs)
    reads = new Map()
    blobs.get = (key, range) => {
      reads.set(key.hash, (reads.get(key.hash) ?? 0) + 1)
      return get(key, range)
    }
    restore = () => {
      blobs.get = get
    }
  })
  afterAll(async () => {
    restore?.()
    await server?.stop()
  })
  afterEach(() => reads?.clear())

  /**
   * Ann stores a chunk; Bob, who only knows its hash, declares a file of `count` copies of it
   * (variable chunk sizes): every index is to be proven.
   */
  async function repeatedChunk(count: number) {
    const ann = await new ApiClient(server.api).register()
    const bob = await new ApiClient(server.api).register()
    const bytes = randomBytes(CHUNK_BYTES)
    await ann.upload(`a-${randomBytes(4).toString('hex')}.bin`, bytes)
    const hash = sha256(bytes)
    const init = await bob.post('/upload/init', {
      filename: 'copies.bin',
      size: count * CHUNK_BYTES,
      chunkHashes: Array.from({ length: count }, () => hash),
      chunkSizes: Array.from({ length: count }, () => CHUNK_BYTES),
    })
    expect(init.status).toBe(201)
    expect(init.body.chunksToProve).toHaveLength(count)
    reads.clear()
    const proofsOf = (proof: string, indexes = count) =>
      Object.fromEntries(Array.from({ length: indexes }, (_, i) => [String(i), proof]))
    const prove = (proofs: Record<string, string>) =>
      plainRequest(server.api, 'POST', `/upload/${init.body.uploadId}/prove`, bob.token, { proofs })
    return {
      bob,
      hash,
      uploadId: init.body.uploadId as string,
      proofsOf,
      prove,
      right: hmac(init.body.proofNonce, bytes),
    }
  }

  it.skipIf(!available)('1,000 proofs of one stored chunk read and hash it once', async () => {
    const { bob, hash, uploadId, proofsOf, prove, right } = await repeatedChunk(1_000)
    const proved = await prove(proofsOf(right))
    expect(proved.status).toBe(200)
    expect(proved.body.chunksToProve).toEqual([])
    expect(reads.get(hash)).toBe(1)
    // The same answer as one entry would have had: every index is proven, and complete works.
    const done = await bob.post(`/upload/${uploadId}/complete`)
    expect(done.status).toBe(201)
    expect(done.body.file.size).toBe(1_000 * CHUNK_BYTES)
  })

  it.skipIf(!available)('a replayed proof, wrong or right, does not hash the chunk again', async () => {
    const { hash, proofsOf, prove, right } = await repeatedChunk(1_000)
    const wrong = '0'.repeat(64)
    for (let attempt = 0; attempt < 3; attempt++) {
      const refused = await prove(proofsOf(wrong))
      expect(refused.status).toBe(400)
      expect(refused.body.error.code).toBe('PROOF_INVALID')
    }
    const proved = await prove(proofsOf(right))
    expect(proved.status).toBe(200)
    expect(proved.body.chunksToProve).toEqual([])
    expect((await prove(proofsOf(right))).status).toBe(200)
    expect(reads.get(hash)).toBe(1)
  })

  it.skipIf(!available)(
    'more proofs than a request may carry are refused before anything is read',
    async () => {
      const { hash, proofsOf, prove, right } = await repeatedChunk(MAX_PROOFS + 1)
      const refused = await prove(proofsOf(right))
      expect(refused.status).toBe(413)
      expect(refused.body.error.code).toBe('PAYLOAD_TOO_LARGE')
      expect(refused.body.error.message).toMatch(new RegExp(`at most ${MAX_PROOFS} proofs per request`))
      expect(reads.get(hash)).toBeUndefined()
      // In two requests, within the bound, they are taken.
      expect((await prove(proofsOf(right, MAX_PROOFS))).status).toBe(200)
      const rest = await prove({ [String(MAX_PROOFS)]: right })
      expect(rest.status).toBe(200)
      expect(rest.body.chunksToProve).toEqual([])
    },
  )

  it.skipIf(!available)(
    'an index written two ways ("1", "01") is refused: no more entries than chunks',
    async () => {
      const { proofsOf, prove, right } = await repeatedChunk(2)
      const refused = await prove({ ...proofsOf(right), '01': right, '001': right })
      expect(refused.status).toBe(400)
      expect(refused.body.error.code).toBe('INVALID_REQUEST')
      expect(refused.body.error.message).toMatch(/write the index as 1/)
    },
  )
})

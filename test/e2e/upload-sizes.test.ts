import { randomBytes } from 'node:crypto'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { ApiClient, hmac, sha256 } from '../helpers/api-client.js'
import { DATABASES } from '../helpers/databases.js'
import { type PlainReply, plainRequest, randomHashes, uploadRowsOf } from '../helpers/plain-requests.js'
import { startTestServer, type TestServer } from '../helpers/test-server.js'

/**
 * A chunk's size is a fact of its bytes. A declaration that gives a stored chunk's hash another
 * size would make a file whose size, quota charge and ETag describe bytes that do not exist
 * (a 10-byte chunk declared as 4096 bytes, downloaded as 10).
 */
const TEN = 10

function expectSizeMismatch(reply: PlainReply, index: number): void {
  expect(reply.status, JSON.stringify(reply.body).slice(0, 300)).toBe(400)
  expect(reply.body).toMatchObject({
    error: { code: 'CHUNK_SIZE_MISMATCH', message: expect.any(String), index },
  })
}

describe.each(DATABASES)('declared chunk sizes on %s', ({ name: backend, available }) => {
  let server: TestServer
  const fresh = () => new ApiClient(server.api).register()

  beforeAll(async () => {
    if (available) server = await startTestServer(backend, { GC_INTERVAL_SECONDS: '0' })
  })
  afterAll(async () => server?.stop())

  const init = (client: ApiClient, body: Record<string, unknown>) =>
    plainRequest(server.api, 'POST', '/upload/init', client.token, body)

  /** What must not change when an init is refused: the user's sessions and quota charge. */
  async function footprint(client: ApiClient) {
    const me = await client.get('/auth/me')
    return { usedBytes: me.body.user.usedBytes, ...(await uploadRowsOf(server, client.user.id)) }
  }

  /** A user who owns a file made of one 10-byte chunk; answers the chunk and its hash. */
  async function ownerOfTenBytes(): Promise<{ owner: ApiClient; bytes: Buffer; hash: string; file: any }> {
    const owner = await fresh()
    const bytes = randomBytes(TEN)
    const file = await owner.upload('ten.bin', bytes)
    expect(file.size).toBe(TEN)
    return { owner, bytes, hash: sha256(bytes), file }
  }

  /** The lies: the 10-byte chunk's hash with another size, declared and by fixed-size chunking. */
  const lies = (hash: string): Array<[string, Record<string, unknown>]> => [
    ['chunkSizes [4096]', { filename: 'liar.bin', size: 4096, chunkHashes: [hash], chunkSizes: [4096] }],
    ['chunkSizes [9]', { filename: 'liar.bin', size: 9, chunkHashes: [hash], chunkSizes: [9] }],
    ['fixed-size, 3 bytes', { filename: 'liar.bin', size: 3, chunkHashes: [hash] }],
    ['fixed-size, 4096 bytes', { filename: 'liar.bin', size: 4096, chunkHashes: [hash] }],
  ]

  it.skipIf(!available)(
    "the owner declaring a stored chunk's hash with another size: 400, nothing recorded",
    async () => {
      const { owner, hash } = await ownerOfTenBytes()
      const before = await footprint(owner)
      for (const [what, body] of lies(hash)) {
        const reply = await init(owner, body)
        expectSizeMismatch(reply, 0)
        expect(reply.body.error.message, what).toMatch(/\d+/)
        expect(await footprint(owner), what).toEqual(before)
      }
      // Among other chunks, at another index, and in the same file as a right one.
      const other = randomBytes(50)
      const mixed = await init(owner, {
        filename: 'mixed.bin',
        size: 50 + TEN + 4096,
        chunkHashes: [sha256(other), hash, hash],
        chunkSizes: [50, TEN, 4096],
      })
      expectSizeMismatch(mixed, 2)
      expect(await footprint(owner)).toEqual(before)
    },
  )

  it.skipIf(!available)(
    'another user declaring it with another size: 400 too, nothing recorded',
    async () => {
      const { hash } = await ownerOfTenBytes()
      const other = await fresh()
      const before = await footprint(other)
      for (const [what, body] of lies(hash)) {
        const reply = await init(other, body)
        expectSizeMismatch(reply, 0)
        expect(await footprint(other), what).toEqual(before)
      }
    },
  )

  it.skipIf(!available)(
    'a mismatch far into a long declaration (after the first recorded batch) leaves no session behind',
    async () => {
      const { owner, hash } = await ownerOfTenBytes()
      const before = await footprint(owner)
      const count = 6_000
      const hashes = randomHashes(count)
      const lyingAt = count - 1
      hashes[lyingAt] = hash
      const reply = await init(owner, {
        filename: 'long.bin',
        size: count * 1000,
        chunkHashes: hashes,
        chunkSizes: Array<number>(count).fill(1000),
      })
      expectSizeMismatch(reply, lyingAt)
      expect(await footprint(owner)).toEqual(before)
    },
    120_000,
  )

  it.skipIf(!available)(
    'the right size still deduplicates, for the owner and (with a proof) for others',
    async () => {
      const { owner, bytes, hash, file } = await ownerOfTenBytes()
      const declared = { size: TEN, chunkHashes: [hash], chunkSizes: [TEN] }

      const again = await init(owner, { filename: 'again.bin', ...declared })
      expect(again.status).toBe(201)
      expect(again.body).toMatchObject({ chunksNeeded: [], chunksToProve: [], chunksExisting: 1 })
      const copy = await plainRequest(
        server.api,
        'POST',
        `/upload/${again.body.uploadId}/complete`,
        owner.token,
      )
      expect(copy.status).toBe(201)
      expect(copy.body.file).toMatchObject({ size: TEN, contentHash: file.contentHash })
      expect(await owner.usedBytes()).toBe(2 * TEN)
      // Fixed-size chunking of the same 10 bytes: the same chunk.
      const fixed = await init(owner, { filename: 'fixed.bin', size: TEN, chunkHashes: [hash] })
      expect(fixed.status).toBe(201)
      expect(fixed.body).toMatchObject({ chunksNeeded: [], chunksToProve: [] })

      const other = await fresh()
      const theirs = await init(other, { filename: 'theirs.bin', ...declared })
      expect(theirs.status).toBe(201)
      expect(theirs.body).toMatchObject({ chunksNeeded: [], chunksToProve: [0], chunksExisting: 1 })
      const proved = await plainRequest(
        server.api,
        'POST',
        `/upload/${theirs.body.uploadId}/prove`,
        other.token,
        {
          proofs: { 0: hmac(theirs.body.proofNonce, bytes) },
        },
      )
      expect(proved.status).toBe(200)
      const done = await plainRequest(
        server.api,
        'POST',
        `/upload/${theirs.body.uploadId}/complete`,
        other.token,
      )
      expect(done.status).toBe(201)
      const download = await other.download(done.body.file.id)
      expect(download.body.equals(bytes)).toBe(true)
      expect(download.headers.get('etag')).toBe(`"${file.contentHash}"`)
      expect(await other.usedBytes()).toBe(TEN)
      expect(await server.services.meta.chunks.find(hash)).toMatchObject({ size: TEN, refCount: 3 })
    },
  )

  it.skipIf(!available)(
    'a chunk stored by another user after the declaration, with another size: check, prove, complete refuse',
    async () => {
      // Ann declares 4096 bytes under a hash nobody stores yet (she cannot upload them: no 4096
      // bytes have it). Then Bob stores the 10 bytes that do. Ann now proves she has those 10.
      const ann = await fresh()
      const bob = await fresh()
      const bytes = randomBytes(TEN)
      const hash = sha256(bytes)
      const declared = await init(ann, {
        filename: 'later.bin',
        size: 4096,
        chunkHashes: [hash],
        chunkSizes: [4096],
      })
      expect(declared.status).toBe(201)
      expect(declared.body.chunksNeeded).toEqual([0])
      const id = declared.body.uploadId
      await bob.upload('ten.bin', bytes)

      const session = (path: string, body?: unknown) =>
        plainRequest(server.api, 'POST', `/upload/${id}/${path}`, ann.token, body)
      expectSizeMismatch(await session('check'), 0)
      expectSizeMismatch(await session('prove', { proofs: { 0: hmac(declared.body.proofNonce, bytes) } }), 0)
      expectSizeMismatch(await session('complete'), 0)
      // Nothing was made, and the session is still hers to abort.
      const listing = await ann.get('/files')
      expect(listing.body.items).toEqual([])
      expect(await ann.usedBytes()).toBe(0)
      expect((await plainRequest(server.api, 'DELETE', `/upload/${id}`, ann.token)).status).toBe(204)
      expect(await server.services.meta.chunks.find(hash)).toMatchObject({ size: TEN, refCount: 1 })
    },
  )
})

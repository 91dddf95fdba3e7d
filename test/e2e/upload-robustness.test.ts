import { randomBytes } from 'node:crypto'
import { readdir } from 'node:fs/promises'
import http from 'node:http'
import path from 'node:path'
import { setTimeout as delay } from 'node:timers/promises'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { blobName } from '../../src/domain/blob-key.js'
import { copiesOnDisk, rowCopyOnDisk } from '../gc/gc-helpers.js'
import { ApiClient, CHUNK, chunksOf, sha256 } from '../helpers/api-client.js'
import { DATABASES } from '../helpers/databases.js'
import { startTestServer, type TestServer } from '../helpers/test-server.js'
import { waitFor } from '../helpers/wait-for.js'

interface RawReply {
  status: number
  body: any
}

/**
 * A chunk PUT over node:http, driven by hand: the caller writes the body piece by piece,
 * and may end it or cut the connection. Without `contentLength` the body goes out with
 * chunked transfer encoding.
 */
function openChunkPut(
  api: string,
  target: { uploadId: string; index: number; hash: string; token?: string; contentLength?: number },
) {
  const headers: Record<string, string> = {
    'content-type': 'application/octet-stream',
    'x-chunk-hash': target.hash,
  }
  if (target.token) headers.authorization = `Bearer ${target.token}`
  if (target.contentLength !== undefined) headers['content-length'] = String(target.contentLength)
  const request = http.request(`${api}/upload/${target.uploadId}/chunk/${target.index}`, {
    method: 'PUT',
    headers,
  })
  const reply = new Promise<RawReply>((resolve, reject) => {
    request.on('error', reject)
    request.on('response', (response) => {
      const parts: Buffer[] = []
      response.on('data', (part: Buffer) => parts.push(part))
      response.on('error', reject)
      response.on('end', () => {
        const text = Buffer.concat(parts).toString('utf8')
        resolve({ status: response.statusCode ?? 0, body: text ? JSON.parse(text) : undefined })
      })
    })
  })
  // A test that cuts the connection on purpose never awaits the reply.
  reply.catch(() => {})
  return { request, reply }
}

describe.each(DATABASES)('upload robustness on %s', ({ name: backend, available }) => {
  let server: TestServer
  const fresh = () => new ApiClient(server.api).register()

  /** Files in the blob store's temp directory (src/adapters/disk/disk-blob-store.ts). */
  const tempFiles = async (): Promise<string[]> => {
    try {
      return await readdir(path.join(server.dataDir, 'chunks', 'tmp'))
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return []
      throw error
    }
  }
  /** The names of the copies of a chunk on disk, of any generation (in `chunks/ab/cd/`). */
  const storedCopies = async (hash: string): Promise<string[]> =>
    (await copiesOnDisk(server.dataDir, hash)).map((file) => path.basename(file))

  beforeAll(async () => {
    if (available) server = await startTestServer(backend)
  })
  afterAll(async () => server?.stop())

  it.skipIf(!available)(
    'a client that disconnects mid-chunk leaves nothing behind, and the chunk uploads again',
    async () => {
      const ann = await fresh()
      const bytes = randomBytes(CHUNK)
      const hash = sha256(bytes)
      const init = await ann.init('cut.bin', bytes)
      const uploadId = init.body.uploadId

      const put = openChunkPut(server.api, {
        uploadId,
        index: 0,
        hash,
        token: ann.token,
        contentLength: bytes.length,
      })
      put.request.on('error', () => {})
      put.request.write(bytes.subarray(0, bytes.length / 2))
      // The server streams the chunk into a temp file: cut the connection once it has begun.
      await waitFor(async () => (await tempFiles()).length > 0, 'the server to start writing the chunk')
      put.request.destroy()

      await waitFor(async () => (await tempFiles()).length === 0, 'the temp file to be removed')
      // The server keeps serving, and holds nothing under the hash.
      const me = await ann.get('/auth/me')
      expect(me.status).toBe(200)
      expect(await storedCopies(hash)).toEqual([])
      expect(await server.services.meta.chunks.find(hash)).toBeNull()
      const check = await ann.post(`/upload/${uploadId}/check`)
      expect(check.status).toBe(200)
      expect(check.body.chunksNeeded).toEqual([0])
      // Nor is another user told that the server holds it.
      expect((await (await fresh()).init('probe.bin', bytes)).body.chunksNeeded).toEqual([0])

      const again = await ann.putChunk(uploadId, 0, bytes)
      expect(again.status).toBe(200)
      expect(again.body).toEqual({ index: 0, hash, deduplicated: false })
      const done = await ann.post(`/upload/${uploadId}/complete`)
      expect(done.status).toBe(201)
      const download = await ann.download(done.body.file.id)
      expect(sha256(download.body)).toBe(hash)
      expect(await tempFiles()).toEqual([])
    },
  )

  it.skipIf(!available)(
    'refuses a chunked-transfer body longer than the chunk with CHUNK_SIZE_MISMATCH, storing nothing',
    async () => {
      const ann = await fresh()
      const bytes = randomBytes(CHUNK)
      const hash = sha256(bytes)
      const init = await ann.init('over.bin', bytes)
      const uploadId = init.body.uploadId

      // The right bytes, then more: a server that stops reading at the declared size would
      // find the hash correct and accept.
      const over = openChunkPut(server.api, { uploadId, index: 0, hash, token: ann.token })
      over.request.on('error', () => {})
      over.request.write(bytes)
      over.request.write(randomBytes(100_000))
      // The server may answer as soon as it has seen too many bytes, or read on to the end of
      // the body: let it answer first if it will, then end the body.
      await Promise.race([over.reply.catch(() => {}), delay(500)])
      if (!over.request.destroyed) over.request.end(randomBytes(100_000))
      // A connection cut instead of an answer is recorded as such, and the checks below still run.
      const reply = await over.reply.catch((error: Error) => ({ status: 0, body: { cutOff: error.message } }))
      expect.soft(reply, 'the server must answer, not cut the connection').toMatchObject({
        status: 400,
        body: { error: { code: 'CHUNK_SIZE_MISMATCH' } },
      })

      expect(await storedCopies(hash)).toEqual([])
      expect(await server.services.meta.chunks.find(hash)).toBeNull()
      await waitFor(async () => (await tempFiles()).length === 0, 'the temp file to be removed')
      expect((await ann.post(`/upload/${uploadId}/check`)).body.chunksNeeded).toEqual([0])
      expect((await ann.post(`/upload/${uploadId}/complete`)).status).toBe(409)

      // The same bytes without the excess, also without Content-Length, are accepted.
      const exact = openChunkPut(server.api, { uploadId, index: 0, hash, token: ann.token })
      exact.request.write(bytes.subarray(0, 1000))
      exact.request.end(bytes.subarray(1000))
      const accepted = await exact.reply
      expect(accepted.status).toBe(200)
      expect(accepted.body).toEqual({ index: 0, hash, deduplicated: false })
      expect(await rowCopyOnDisk(server, hash)).toBe(true)
    },
  )

  it.skipIf(!available)(
    'two simultaneous PUTs of one chunk in one session both succeed, and it is stored once',
    async () => {
      const ann = await fresh()
      const bytes = randomBytes(CHUNK)
      const hash = sha256(bytes)
      const init = await ann.init('twice.bin', bytes)
      const uploadId = init.body.uploadId
      const target = { uploadId, index: 0, hash, token: ann.token, contentLength: bytes.length }

      const first = openChunkPut(server.api, target)
      const second = openChunkPut(server.api, target)
      first.request.write(bytes.subarray(0, bytes.length / 2))
      second.request.write(bytes.subarray(0, bytes.length / 2))
      // Both are being written at once before either finishes.
      await waitFor(async () => (await tempFiles()).length === 2, 'both PUTs to be in progress')
      first.request.end(bytes.subarray(bytes.length / 2))
      second.request.end(bytes.subarray(bytes.length / 2))
      const replies = await Promise.all([first.reply, second.reply])
      expect(replies.map((reply) => reply.status)).toEqual([200, 200])
      for (const reply of replies) expect(reply.body).toMatchObject({ index: 0, hash })
      // Each wrote a copy of its own; the one that lost the race to record it deleted its copy.
      const row = await server.services.meta.chunks.find(hash)
      expect(await storedCopies(hash)).toEqual([blobName({ hash, generation: row!.generation })])
      expect(await tempFiles()).toEqual([])
      expect(await server.services.meta.chunks.find(hash)).toMatchObject({ hash, size: CHUNK })

      const done = await ann.post(`/upload/${uploadId}/complete`)
      expect(done.status).toBe(201)
      expect(await ann.downloadedHash(done.body.file.id)).toBe(hash)
      expect(await server.services.meta.chunks.find(hash)).toMatchObject({ refCount: 1 })
    },
  )

  it.skipIf(!available)(
    'two concurrent completes to one new name keep both writes, as versions 1 and 2',
    async () => {
      const ann = await fresh()
      const currentSizes: number[] = []
      // A few rounds, each in a folder of its own, to give the race several chances.
      for (let round = 0; round < 5; round++) {
        const folder = await ann.post('/folders', { name: `race-${round}` })
        expect(folder.status).toBe(201)
        const folderId = folder.body.id
        const contents = [randomBytes(1000 + round), randomBytes(CHUNK + 3000 + round)]
        const sessions = await Promise.all(
          contents.map(async (bytes) => {
            const init = await ann.init('same.txt', bytes, { folderId })
            expect(init.status).toBe(201)
            const chunks = chunksOf(bytes)
            for (const index of init.body.chunksNeeded as number[]) {
              expect((await ann.putChunk(init.body.uploadId, index, chunks[index] as Buffer)).status).toBe(
                200,
              )
            }
            return init.body.uploadId as string
          }),
        )

        const completes = await Promise.all(sessions.map((id) => ann.post(`/upload/${id}/complete`)))
        expect(completes.map((reply) => reply.status)).toEqual([201, 201])
        const [a, b] = completes.map((reply) => reply.body)
        expect(a.conflict).toBe(false)
        expect(b.conflict).toBe(false)
        expect(a.file.id).toBe(b.file.id)
        expect([a.file.version, b.file.version].sort()).toEqual([1, 2])

        const listing = await ann.get(`/files?folderId=${folderId}`)
        expect(listing.body.items).toMatchObject([{ type: 'file', name: 'same.txt', version: 2 }])
        const fileId = a.file.id
        const v1 = await ann.get(`/files/${fileId}/versions/1/download`)
        const v2 = await ann.get(`/files/${fileId}/versions/2/download`)
        expect([v1.status, v2.status]).toEqual([200, 200])
        const expected = contents.map((bytes) => sha256(bytes)).sort()
        expect([sha256(v1.body), sha256(v2.body)].sort()).toEqual(expected)
        // The one that committed second is the current content.
        const current = await ann.download(fileId)
        expect(sha256(current.body)).toBe(sha256(v2.body))
        const file = await ann.get(`/files/${fileId}`)
        expect(file.body).toMatchObject({ version: 2, size: v2.body.length })
        currentSizes.push(v2.body.length)
      }
      // Quota counts each file's current version, once.
      const total = currentSizes.reduce((sum, size) => sum + size, 0)
      expect(await ann.usedBytes()).toBe(total)
    },
  )

  it.skipIf(!available)(
    'twenty concurrent uploads into one folder all succeed and are all listed',
    async () => {
      const ann = await fresh()
      const folder = await ann.post('/folders', { name: 'crowd' })
      const folderId = folder.body.id
      const contents = Array.from({ length: 20 }, (_, i) =>
        randomBytes(i % 4 === 0 ? CHUNK + 1000 * i : 997 * (i + 1)),
      )
      const names = contents.map((_, i) => `file-${String(i).padStart(2, '0')}.bin`)
      const files = await Promise.all(
        contents.map((bytes, i) => ann.upload(names[i] as string, bytes, { folderId })),
      )
      expect(new Set(files.map((file) => file.id)).size).toBe(20)

      const listing = await ann.get(`/files?folderId=${folderId}`)
      expect(listing.status).toBe(200)
      expect(listing.body.nextCursor).toBeNull()
      expect(listing.body.items.map((item: any) => item.name)).toEqual(names)
      expect(listing.body.items.map((item: any) => item.size)).toEqual(contents.map((bytes) => bytes.length))
      for (const [i, file] of files.entries()) {
        expect(await ann.downloadedHash(file.id)).toBe(sha256(contents[i] as Buffer))
      }
      const total = contents.reduce((sum, bytes) => sum + bytes.length, 0)
      expect(await ann.usedBytes()).toBe(total)
    },
  )

  it.skipIf(!available)('an unauthenticated chunk PUT is 401 and stores nothing', async () => {
    const ann = await fresh()
    const bytes = randomBytes(64 * 1024)
    const hash = sha256(bytes)
    const init = await ann.init('guarded.bin', bytes)
    const uploadId = init.body.uploadId

    const anonymous = new ApiClient(server.api)
    const noToken = await anonymous.putChunk(uploadId, 0, bytes)
    expect(noToken.status).toBe(401)
    expect(noToken.body.error.code).toBe('UNAUTHORIZED')
    anonymous.token = 'not-a-session-token'
    const badToken = await anonymous.putChunk(uploadId, 0, bytes)
    expect(badToken.status).toBe(401)
    expect(badToken.body.error.code).toBe('UNAUTHORIZED')
    // Another user's valid token does not reach the session either.
    const bob = await fresh()
    const otherUser = await bob.putChunk(uploadId, 0, bytes)
    expect(otherUser.status).toBe(404)
    expect(otherUser.body.error.code).toBe('UPLOAD_NOT_FOUND')

    expect(await storedCopies(hash)).toEqual([])
    expect(await server.services.meta.chunks.find(hash)).toBeNull()
    expect(await tempFiles()).toEqual([])
    expect((await ann.post(`/upload/${uploadId}/check`)).body.chunksNeeded).toEqual([0])
  })
})

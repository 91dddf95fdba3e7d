/**
 * Guarantee 2 of the README ("Durability"), as a client sees it: a chunk PUT that answered 200
 * survives a crash of the server process (SIGKILL), so the client never has to send it again.
 * The server runs as `tessera serve` in a process of its own, killed right after a 200 and in the
 * middle of another chunk's PUT, and restarted on the same DATA_DIR (and database); the client
 * (plain `fetch`) then sends only what `check` lists, completes, and downloads the same bytes.
 *
 * crash-points.test.ts kills the services at each step inside a PUT (before and after the row);
 * this file checks the promise at the HTTP edge, where a client sees it.
 */
import { randomBytes } from 'node:crypto'
import { mkdtemp, readdir, rm, stat } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { describe, expect, it } from 'vitest'
import { ApiClient, MiB, sha256 } from '../helpers/api-client.js'
import { createTestDatabase, DATABASES } from '../helpers/databases.js'
import { type ServerProcess, startServerProcess } from '../helpers/server-process.js'
import { waitFor } from '../helpers/wait-for.js'

describe.each(DATABASES)(
  'acknowledged chunks after a SIGKILL of the server on $name',
  ({ name, available }) => {
    it.skipIf(!available)('are not asked for again; the upload completes byte-identical', async () => {
      const dataDir = await mkdtemp(path.join(tmpdir(), 'tessera-acknowledged-'))
      const database = name === 'postgres' ? await createTestDatabase() : undefined
      const env = {
        UPLOAD_MIN_CHUNK_BYTES: '1',
        GC_INTERVAL_SECONDS: '0',
        ...(database ? { DATABASE_URL: database.url } : {}),
      }
      let server = await startServerProcess(env, { dataDir })
      try {
        const parts = [MiB / 2, MiB, 2 * MiB, (3 * MiB) / 4].map((size) => randomBytes(size))
        let ann = await new ApiClient(server.api).register()
        const init = await ann.post('/upload/init', {
          filename: 'crash.bin',
          size: parts.reduce((sum, p) => sum + p.length, 0),
          chunkHashes: parts.map(sha256),
          chunkSizes: parts.map((p) => p.length),
        })
        expect(init.status).toBe(201)
        const { uploadId } = init.body
        const put = (index: number) => ann.putChunk(uploadId, index, parts[index] as Buffer)
        const check = async () => (await ann.post(`/upload/${uploadId}/check`)).body.chunksNeeded
        expect(init.body.chunksNeeded).toEqual([0, 1, 2, 3])

        // Killed right after two 200s.
        expect((await put(0)).status).toBe(200)
        expect((await put(1)).status).toBe(200)
        await server.kill()
        server = await startServerProcess(env, { dataDir })
        ann = clientOf(server, ann)
        expect(await check()).toEqual([2, 3])

        // Killed after another 200, while chunk 2's bytes are still arriving.
        expect((await put(3)).status).toBe(200)
        const cut = await killInTheMiddleOfAPut(server, ann, uploadId, 2, parts[2] as Buffer)
        expect(cut).toBeInstanceOf(Error)
        server = await startServerProcess(env, { dataDir })
        ann = clientOf(server, ann)
        expect(await check()).toEqual([2])

        // The client sends what check lists, and nothing else.
        for (const index of await check()) expect((await put(index)).status).toBe(200)
        const done = await ann.post(`/upload/${uploadId}/complete`)
        expect(done.status, JSON.stringify(done.body)).toBe(201)
        expect(await ann.downloadedHash(done.body.file.id)).toBe(sha256(Buffer.concat(parts)))
      } finally {
        await server.stop()
        await database?.drop()
        await rm(dataDir, { recursive: true, force: true })
      }
    })
  },
)

/** The same account, on the restarted server (its port is new; its session token still works). */
function clientOf(server: ServerProcess, before: ApiClient): ApiClient {
  const client = new ApiClient(server.api)
  client.token = before.token
  client.user = before.user
  return client
}

/**
 * Starts a PUT of `bytes`, sends half of them, waits until the server has written some to a temp
 * file, then SIGKILLs it. Answers what the client's fetch ended with (an error: no answer came).
 */
async function killInTheMiddleOfAPut(
  server: ServerProcess,
  client: ApiClient,
  uploadId: string,
  index: number,
  bytes: Buffer,
): Promise<unknown> {
  let controller!: ReadableStreamDefaultController<Uint8Array>
  const body = new ReadableStream<Uint8Array>({
    start: (c) => {
      controller = c
    },
  })
  controller.enqueue(bytes.subarray(0, bytes.length / 2))
  const request: RequestInit & { duplex: 'half' } = {
    method: 'PUT',
    body,
    duplex: 'half',
    headers: { authorization: `Bearer ${client.token}`, 'x-chunk-hash': sha256(bytes) },
  }
  const answered = fetch(`${server.api}/upload/${uploadId}/chunk/${index}`, request).then(
    (response) => response,
    (error: unknown) => error,
  )
  const tempDir = path.join(server.dataDir, 'chunks', 'tmp')
  await waitFor(async () => {
    for (const name of await readdir(tempDir))
      if ((await stat(path.join(tempDir, name))).size > 0) return true
    return false
  }, 'the server to write part of the chunk to a temp file')
  await server.kill()
  return answered
}

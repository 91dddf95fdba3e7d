import { execFile } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { promisify } from 'node:util'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { ApiClient, MiB, sha256 } from '../helpers/api-client.js'
import { createTestDatabase, DATABASES, type TestDatabase } from '../helpers/databases.js'
import { randomHashes } from '../helpers/plain-requests.js'
import { type ServerProcess, startServerProcess } from '../helpers/server-process.js'

const run = promisify(execFile)
const TRIES = 20

/**
 * A chunk PUT refused before its body is read (issue 10): whatever the client, it reads the
 * error answer, never a reset connection (EPIPE, "send failure") it cannot tell from a network
 * fault. Each refusal is sent with a 4 MiB body, by Node's fetch and by curl, to a server in a
 * process of its own (in this process the client and server would share one event loop, which
 * hides the race between the server's close and the client's sending).
 */
describe.each(DATABASES)('chunk PUTs refused before their body is read on %s', (listed) => {
  const { name: backend, available } = listed
  const context = {} as { server: ServerProcess }
  const body = randomBytes(4 * MiB)
  // The session declares one chunk of 1 MiB: a 4 MiB body is also the wrong length.
  const declared = randomBytes(MiB)
  let uploadId: string
  let dir: string
  let bodyFile: string
  let ann: ApiClient
  let bob: ApiClient
  let database: TestDatabase | undefined
  beforeAll(async () => {
    if (!available) return
    database = backend === 'postgres' ? await createTestDatabase() : undefined
    context.server = await startServerProcess(database ? { DATABASE_URL: database.url } : {})
    ann = await new ApiClient(context.server.api).register()
    bob = await new ApiClient(context.server.api).register()
    const init = await ann.init('declared.bin', declared)
    expect(init.status).toBe(201)
    uploadId = init.body.uploadId
    dir = await mkdtemp(path.join(tmpdir(), 'tessera-rejected-'))
    bodyFile = path.join(dir, 'body.bin')
    await writeFile(bodyFile, body)
  })
  afterAll(async () => {
    await context.server?.stop()
    await database?.drop()
    if (dir) await rm(dir, { recursive: true, force: true })
  })

  interface Refusal {
    name: string
    path: () => string
    headers: () => Record<string, string>
    status: number
    code: string
  }
  const auth = (client: ApiClient) => ({ authorization: `Bearer ${client.token}` })
  const refusals: Refusal[] = [
    {
      name: 'an index out of range',
      path: () => `/upload/${uploadId}/chunk/7`,
      headers: () => ({ ...auth(ann), 'x-chunk-hash': sha256(declared) }),
      status: 400,
      code: 'INVALID_CHUNK_INDEX',
    },
    {
      name: 'a wrong X-Chunk-Hash',
      path: () => `/upload/${uploadId}/chunk/0`,
      headers: () => ({ ...auth(ann), 'x-chunk-hash': randomHashes(1)[0] as string }),
      status: 400,
      code: 'HASH_MISMATCH',
    },
    {
      name: 'no X-Chunk-Hash',
      path: () => `/upload/${uploadId}/chunk/0`,
      headers: () => auth(ann),
      status: 400,
      code: 'INVALID_REQUEST',
    },
    {
      name: "another user's session",
      path: () => `/upload/${uploadId}/chunk/0`,
      headers: () => ({ ...auth(bob), 'x-chunk-hash': sha256(declared) }),
      status: 404,
      code: 'UPLOAD_NOT_FOUND',
    },
    {
      name: 'no session token',
      path: () => `/upload/${uploadId}/chunk/0`,
      headers: () => ({ 'x-chunk-hash': sha256(declared) }),
      status: 401,
      code: 'UNAUTHORIZED',
    },
    {
      name: 'the wrong length',
      path: () => `/upload/${uploadId}/chunk/0`,
      headers: () => ({ ...auth(ann), 'x-chunk-hash': sha256(declared) }),
      status: 400,
      code: 'CHUNK_SIZE_MISMATCH',
    },
  ]

  for (const refusal of refusals) {
    it.skipIf(!available)(`answers ${refusal.name} to Node's fetch, ${TRIES} times in a row`, async () => {
      const seen: string[] = []
      for (let i = 0; i < TRIES; i++) {
        try {
          const response = await fetch(context.server.api + refusal.path(), {
            method: 'PUT',
            headers: { ...refusal.headers(), 'content-type': 'application/octet-stream' },
            body,
          })
          const answer = (await response.json()) as { error: { code: string; message: string } }
          seen.push(`${response.status} ${answer.error.code}`)
          expect(typeof answer.error.message).toBe('string')
        } catch (error) {
          const cause = (error as { cause?: { code?: string } }).cause
          seen.push(`failed: ${cause?.code ?? (error as Error).message}`)
        }
      }
      expect(seen).toEqual(Array(TRIES).fill(`${refusal.status} ${refusal.code}`))
    })

    it.skipIf(!available)(`answers ${refusal.name} to curl, ${TRIES} times in a row`, async () => {
      const seen: string[] = []
      for (let i = 0; i < TRIES; i++) {
        const args = ['-sS', '-X', 'PUT', '--data-binary', `@${bodyFile}`, '-w', '\n%{http_code}']
        for (const [name, value] of Object.entries(refusal.headers())) args.push('-H', `${name}: ${value}`)
        args.push('-H', 'content-type: application/octet-stream', context.server.api + refusal.path())
        try {
          const { stdout } = await run('curl', args)
          const lines = stdout.split('\n')
          const status = lines.pop()
          const answer = JSON.parse(lines.join('\n')) as { error: { code: string; message: string } }
          seen.push(`${status} ${answer.error.code}`)
        } catch (error) {
          const failure = error as { code?: number; stderr?: string }
          seen.push(`curl exit ${failure.code}: ${failure.stderr?.trim() ?? String(error)}`)
        }
      }
      expect(seen).toEqual(Array(TRIES).fill(`${refusal.status} ${refusal.code}`))
    })
  }

  it.skipIf(!available)('still takes the chunk on a connection that carried refusals', async () => {
    const put = await ann.putChunk(uploadId, 0, declared)
    expect(put.status).toBe(200)
  })
})

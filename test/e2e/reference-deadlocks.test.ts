import { randomBytes, randomInt } from 'node:crypto'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { ApiClient, hmac, sha256 } from '../helpers/api-client.js'
import { DATABASES } from '../helpers/databases.js'
import { plainRequest } from '../helpers/plain-requests.js'
import { startTestServer, type TestServer } from '../helpers/test-server.js'

/**
 * One version kept per file: every new version drops the previous one's references in the
 * same transaction as it adds its own. Two completes that each add what the other drops took
 * the chunk rows in opposite orders and deadlocked on PostgreSQL (a 500 for one of them).
 */
const ONE_VERSION = { VERSION_MAX_COUNT: '1', VERSION_THINNING: 'false', GC_INTERVAL_SECONDS: '0' }
const CHUNKS_PER_FILE = 30
const ROUNDS = 20

/** `count` small random chunks, and the init fields that declare a file made of them. */
function randomFile(count: number) {
  const chunks = Array.from({ length: count }, () => randomBytes(randomInt(100, 2000)))
  return {
    chunks,
    bytes: Buffer.concat(chunks),
    declaration: {
      size: chunks.reduce((sum, chunk) => sum + chunk.length, 0),
      chunkHashes: chunks.map(sha256),
      chunkSizes: chunks.map((chunk) => chunk.length),
    },
  }
}

type RandomFile = ReturnType<typeof randomFile>

/**
 * A session for `file` under `filename` with every chunk in: what the server does not hold is
 * uploaded, what another user holds is proven (one HMAC of each chunk's bytes, keyed by the
 * session's nonce). Only complete is left.
 */
async function prepare(client: ApiClient, filename: string, file: RandomFile): Promise<string> {
  const init = await client.post('/upload/init', { filename, ...file.declaration })
  expect(init.status, JSON.stringify(init.body)).toBe(201)
  const uploadId = init.body.uploadId as string
  const needed = init.body.chunksNeeded as number[]
  const puts = await Promise.all(
    needed.map((index) => client.putChunk(uploadId, index, file.chunks[index] as Buffer)),
  )
  expect(puts.map((put) => put.status)).toEqual(needed.map(() => 200))
  const toProve = init.body.chunksToProve as number[]
  if (toProve.length > 0) {
    const proofs = Object.fromEntries(
      toProve.map((index) => [index, hmac(init.body.proofNonce, file.chunks[index] as Buffer)]),
    )
    const proved = await client.post(`/upload/${uploadId}/prove`, { proofs })
    expect(proved.status, JSON.stringify(proved.body)).toBe(200)
    expect(proved.body.chunksToProve).toEqual([])
  }
  return uploadId
}

async function upload(client: ApiClient, filename: string, file: RandomFile): Promise<any> {
  const uploadId = await prepare(client, filename, file)
  const done = await client.post(`/upload/${uploadId}/complete`)
  expect(done.status, JSON.stringify(done.body)).toBe(201)
  return done.body.file
}

describe.each(DATABASES)('completes that swap shared chunks on %s', ({ name: backend, available }) => {
  let server: TestServer
  const fresh = () => new ApiClient(server.api).register()

  beforeAll(async () => {
    if (available) server = await startTestServer(backend, ONE_VERSION)
  })
  afterAll(async () => server?.stop())

  it.skipIf(!available)(
    `${ROUNDS} rounds of two completes, each adding the chunks the other drops, never fail`,
    async () => {
      const ann = await fresh()
      const bob = await fresh()
      const failures: string[] = []
      for (let round = 0; round < ROUNDS; round++) {
        const ys = randomFile(CHUNKS_PER_FILE)
        const xs = randomFile(CHUNKS_PER_FILE)
        // Ann's file holds Y1..Yn, Bob's X1..Xn.
        const annFile = await upload(ann, `ann-${round}.bin`, ys)
        const bobFile = await upload(bob, `bob-${round}.bin`, xs)
        // Next, Ann's file becomes X1..Xn (dropping Y) and Bob's Y1..Yn (dropping X).
        const annSession = await prepare(ann, `ann-${round}.bin`, xs)
        const bobSession = await prepare(bob, `bob-${round}.bin`, ys)

        // Only the two completes, sent together.
        const [annDone, bobDone] = await Promise.all([
          plainRequest(server.api, 'POST', `/upload/${annSession}/complete`, ann.token),
          plainRequest(server.api, 'POST', `/upload/${bobSession}/complete`, bob.token),
        ])
        for (const [who, reply] of [
          ['ann', annDone],
          ['bob', bobDone],
        ] as const) {
          if (reply.status !== 201)
            failures.push(`round ${round} ${who}: ${reply.status} ${JSON.stringify(reply.body)}`)
        }
        if (failures.length > 0) continue
        expect(annDone.body.file).toMatchObject({ id: annFile.id, version: 2, size: xs.bytes.length })
        expect(bobDone.body.file).toMatchObject({ id: bobFile.id, version: 2, size: ys.bytes.length })
        // One version each (the previous one pruned), with the swapped content.
        expect((await ann.get(`/files/${annFile.id}/versions`)).body.versions).toHaveLength(1)
        expect((await bob.get(`/files/${bobFile.id}/versions`)).body.versions).toHaveLength(1)
        expect(await ann.downloadedHash(annFile.id)).toBe(sha256(xs.bytes))
        expect(await bob.downloadedHash(bobFile.id)).toBe(sha256(ys.bytes))
      }
      expect(failures).toEqual([])

      // Every chunk is referenced by exactly one current version now, and the counts say so.
      const scrub = await server.services.scrubber.run()
      expect(scrub.refCountMismatches).toEqual([])
      expect(scrub.danglingReferences).toEqual([])
      expect(scrub.sizeMismatches).toEqual([])
    },
    300_000,
  )
})

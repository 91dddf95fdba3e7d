import { randomBytes } from 'node:crypto'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { ApiClient, hmac, sha256 } from '../helpers/api-client.js'
import { DATABASES } from '../helpers/databases.js'
import { holdsReleasedAfterEach } from '../helpers/pause.js'
import { startTestServer, type TestServer } from '../helpers/test-server.js'
import { copiesOnDisk, deleteAndPurge, initParts, PAST_GRACE_MS, uploadParts } from './gc-helpers.js'

/**
 * The two checks that keep the collector away from chunks an upload is about to use, each met
 * by a collector run in the very gap it closes. Remove either and a test here fails: the chunk
 * guard around a declaration (PostgreSQL, whose statements may miss a session committed a
 * moment before a claim), and the chunk PUT's re-check that its session still exists.
 */

const settle = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

describe.each(DATABASES)('the collector against uploads in flight, on %s', (listed) => {
  const { name: backend, available } = listed
  let server: TestServer
  const hold = holdsReleasedAfterEach()
  const fresh = () => new ApiClient(server.api).register()

  beforeAll(async () => {
    if (!available) return
    server = await startTestServer(backend, { GC_INTERVAL_SECONDS: '0' })
  })
  afterAll(async () => server?.stop())

  it.skipIf(!available)(
    'a declaration that names marked garbage keeps it, though a collector runs while it is being recorded',
    async () => {
      const [ann, bob] = [await fresh(), await fresh()]
      const part = randomBytes(4096)
      await deleteAndPurge(ann, (await uploadParts(ann, 'x.bin', [part])).id)
      await server.services.gc.run()
      server.advance(PAST_GRACE_MS)

      // Bob's init has classified the chunk as stored (to prove), and not yet recorded his session.
      const held = hold('upload.init.after-classify')
      const init = initParts(bob, 'y.bin', [part])
      await held.arrived
      const collecting = server.services.gc.run()
      // Time for a collector that is not kept out to claim and delete it.
      await settle(500)
      held.release()
      const [declared, report] = await Promise.all([init, collecting])
      expect(declared.status).toBe(201)
      expect(declared.body.chunksToProve).toEqual([0])
      expect(report.swept).toBe(0)

      const proved = await bob.post(`/upload/${declared.body.uploadId}/prove`, {
        proofs: { 0: hmac(declared.body.proofNonce, part) },
      })
      expect(proved.status, JSON.stringify(proved.body)).toBe(200)
      const done = await bob.post(`/upload/${declared.body.uploadId}/complete`)
      expect(done.status, JSON.stringify(done.body)).toBe(201)
      expect((await bob.download(done.body.file.id)).body.equals(part)).toBe(true)
    },
  )

  it.skipIf(!available)(
    'a chunk PUT whose session is aborted while its bytes land records nothing, even once the collector took the bytes',
    async () => {
      const ann = await fresh()
      const part = randomBytes(4096)
      const hash = sha256(part)
      const init = await initParts(ann, 'z.bin', [part])
      expect(init.body.chunksNeeded).toEqual([0])

      const held = hold('chunk.put.before-row')
      const put = ann.putChunk(init.body.uploadId, 0, part)
      await held.arrived
      expect(await copiesOnDisk(server.dataDir, hash)).toHaveLength(1)
      expect((await ann.delete(`/upload/${init.body.uploadId}`)).status).toBe(204)
      // The copy is no session's and no row's: the orphan walk may take it, and does.
      server.advance(2 * PAST_GRACE_MS)
      const report = await server.services.gc.run({ orphans: true })
      expect(report.orphans).toBe(1)
      expect(await copiesOnDisk(server.dataDir, hash)).toEqual([])
      held.release()

      const answer = await put
      expect(answer.status).toBe(404)
      expect(answer.body.error.code).toBe('UPLOAD_NOT_FOUND')
      // No row claims bytes that are not there: the next upload of them is asked for them.
      expect(await server.services.meta.chunks.find(hash)).toBeNull()
      const again = await initParts(ann, 'z.bin', [part])
      expect(again.body.chunksNeeded).toEqual([0])
    },
  )
})

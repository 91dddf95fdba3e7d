import { randomBytes } from 'node:crypto'
import { readdir } from 'node:fs/promises'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { ApiClient, chunksOf, MiB, sha256 } from '../helpers/api-client.js'
import { DATABASES } from '../helpers/databases.js'
import { databaseOf, plainRequest, randomHashes } from '../helpers/plain-requests.js'
import { startTestServer, type TestServer } from '../helpers/test-server.js'

/**
 * Open upload sessions hold quota (issue: hostile clients): an init reserves what its session may
 * bring in against the owner's quota, beside what is used and what other open sessions hold,
 * until the session is completed, aborted or expires; a file it replaces covers that file's size,
 * for one open session at a time; and a user may have only so many open.
 */

const QUOTA = 10 * MiB
const MAX_OPEN = 4
const DAY = 24 * 3_600_000

describe.each(DATABASES)('quota reservations of upload sessions on %s', ({ name: backend, available }) => {
  let server: TestServer
  beforeAll(async () => {
    if (!available) return
    server = await startTestServer(backend, {
      DEFAULT_QUOTA_BYTES: String(QUOTA),
      UPLOAD_MAX_OPEN_SESSIONS: String(MAX_OPEN),
      GC_INTERVAL_SECONDS: '0',
    })
  })
  afterAll(async () => server?.stop())

  const someone = () => new ApiClient(server.api).register()
  /** An init of `size` bytes of chunks nobody stores (4 MiB chunks), with plain fetch. */
  const declare = (client: ApiClient, size: number, filename = `f-${randomBytes(4).toString('hex')}.bin`) =>
    plainRequest(server.api, 'POST', '/upload/init', client.token, {
      filename,
      size,
      chunkHashes: randomHashes(Math.ceil(size / (4 * MiB))),
    })
  /** Every chunk of `bytes` sent for the session `init` answered (201). */
  const sendChunks = async (client: ApiClient, init: { body: { uploadId: string } }, bytes: Buffer) => {
    for (const [index, chunk] of chunksOf(bytes).entries()) {
      expect((await client.putChunk(init.body.uploadId, index, chunk)).status).toBe(200)
    }
  }

  it.skipIf(!available)(
    'sessions replacing one file: its size covers one of them; a second into a full quota is 507',
    async () => {
      const ann = await someone()
      await ann.upload('X.bin', randomBytes(8 * MiB))
      // The first replacement of X counts on X's 8 MiB and holds nothing...
      const first = await declare(ann, 8 * MiB, 'X.bin')
      expect(first.status).toBe(201)
      // ... every other one brings in 8 MiB of its own, which 2 MiB left cannot hold.
      const second = await declare(ann, 8 * MiB, 'x.BIN')
      expect(second.status).toBe(507)
      expect(second.body.error.code).toBe('QUOTA_EXCEEDED')
      expect(second.body.error.message).toMatch(/another open upload session replacing this file/)
      // What is left is 2 MiB, to the byte.
      const rest = await declare(ann, 2 * MiB)
      expect(rest.status).toBe(201)
      // A version that would be a conflicted copy (a stale base) replaces nothing: 1 byte is over.
      const stale = await plainRequest(server.api, 'POST', '/upload/init', ann.token, {
        filename: 'X.bin',
        size: 1,
        baseVersion: 7,
        chunkHashes: randomHashes(1),
      })
      expect(stale.status).toBe(507)
      expect((await declare(ann, 1, 'X.bin')).status).toBe(507)
      // The first one's end hands the credit on.
      expect((await ann.delete(`/upload/${first.body.uploadId}`)).status).toBe(204)
      expect((await declare(ann, 8 * MiB, 'X.bin')).status).toBe(201)
      expect(await ann.usedBytes()).toBe(8 * MiB)
    },
  )

  it.skipIf(!available)(
    'a user at exactly full quota replaces a file with a same-size version, one session at a time',
    async () => {
      const ann = await someone()
      await ann.upload('full.bin', randomBytes(QUOTA))
      expect(await ann.usedBytes()).toBe(QUOTA)
      const next = randomBytes(QUOTA)
      const init = await ann.init('full.bin', next, { baseVersion: 1 })
      expect(init.status).toBe(201)
      expect((await declare(ann, QUOTA, 'full.bin')).status).toBe(507)
      await sendChunks(ann, init, next)
      const done = await ann.post(`/upload/${init.body.uploadId}/complete`)
      expect(done.status).toBe(201)
      expect(done.body.file.version).toBe(2)
      expect(await ann.usedBytes()).toBe(QUOTA)
      // Once completed, the file covers the next replacement again, a smaller one too.
      const smaller = randomBytes(QUOTA - MiB)
      const again = await ann.init('full.bin', smaller, { baseVersion: 2 })
      expect(again.status).toBe(201)
      await sendChunks(ann, again, smaller)
      expect((await ann.post(`/upload/${again.body.uploadId}/complete`)).status).toBe(201)
      expect(await ann.usedBytes()).toBe(QUOTA - MiB)
    },
  )

  it.skipIf(!available)(
    'concurrent inits replacing one file with plain fetch: exactly one gets its credit',
    async () => {
      const ann = await someone()
      await ann.upload('X.bin', randomBytes(8 * MiB))
      const replies = await Promise.all(
        Array.from({ length: MAX_OPEN }, () => declare(ann, 8 * MiB, 'X.bin')),
      )
      const statuses = replies.map((reply) => reply.status)
      expect(statuses.filter((status) => status === 201)).toHaveLength(1)
      expect(statuses.filter((status) => status === 507)).toHaveLength(MAX_OPEN - 1)
    },
  )

  it.skipIf(!available)('a purged file covers its replacing session no longer', async () => {
    const ann = await someone()
    const file = await ann.upload('X.bin', randomBytes(8 * MiB))
    expect((await declare(ann, 8 * MiB, 'X.bin')).status).toBe(201)
    // In the trash, X still counts in usedBytes, and still covers the session.
    expect((await ann.delete(`/files/${file.id}`)).status).toBe(204)
    expect((await declare(ann, 8 * MiB)).status).toBe(507)
    // Purged, it neither counts nor covers: the session now holds its 8 MiB itself.
    expect((await ann.delete(`/trash/${file.id}`)).status).toBe(204)
    expect(await ann.usedBytes()).toBe(0)
    expect((await declare(ann, 8 * MiB)).status).toBe(507)
    expect((await declare(ann, 2 * MiB)).status).toBe(201)
  })

  it.skipIf(!available)(
    'chunks only an aborted session brought in go at the next collector run; others wait their grace',
    async () => {
      const copiesOf = async (hashes: string[]) => {
        const names = await readdir(`${server.dataDir}/chunks`, { recursive: true })
        return names.filter((name) => hashes.some((hash) => name.endsWith(hash) || name.includes(`${hash}.`)))
      }
      const rows = async (hashes: string[]) =>
        (await databaseOf(server).selectFrom('chunks').select('hash').where('hash', 'in', hashes).execute())
          .length
      const ann = await someone()
      const bob = await someone()
      // Ann's own bytes, which no version ever named.
      const own = randomBytes(8 * MiB)
      const ownHashes = chunksOf(own).map(sha256)
      // Bytes a file named once (uploaded, then purged): a download may still be reading them.
      const once = randomBytes(4 * MiB)
      const onceHashes = chunksOf(once).map(sha256)
      const file = await ann.upload('once.bin', once)
      expect((await ann.delete(`/files/${file.id}`)).status).toBe(204)
      expect((await ann.delete(`/trash/${file.id}`)).status).toBe(204)
      // Bytes Bob's open session declares too.
      const shared = randomBytes(MiB)
      const sharedHashes = [sha256(shared)]
      expect((await bob.init('shared.bin', shared)).status).toBe(201)

      for (const bytes of [own, once, shared]) {
        const init = await ann.init(`a-${randomBytes(4).toString('hex')}.bin`, bytes)
        expect(init.status).toBe(201)
        await sendChunks(ann, init, bytes)
        expect((await ann.delete(`/upload/${init.body.uploadId}`)).status).toBe(204)
      }
      await server.services.gc.run()
      expect(await rows(ownHashes)).toBe(0)
      expect(await copiesOf(ownHashes)).toEqual([])
      expect(await rows(onceHashes)).toBe(1)
      expect(await copiesOf(onceHashes)).toHaveLength(1)
      expect(await rows(sharedHashes)).toBe(1)
      expect(await copiesOf(sharedHashes)).toHaveLength(1)
    },
  )

  it.skipIf(!available)(
    'four 8 MiB sessions into a 10 MiB quota: the first is taken, the others are 507 at init',
    async () => {
      const ann = await someone()
      const first = await declare(ann, 8 * MiB)
      expect(first.status).toBe(201)
      for (let i = 0; i < 3; i++) {
        const more = await declare(ann, 8 * MiB)
        expect(more.status).toBe(507)
        expect(more.body.error.code).toBe('QUOTA_EXCEEDED')
        expect(more.body.error.message).toMatch(/held by open upload sessions/)
      }
      // What is left beside the reservation still fits, to the byte; one more byte does not.
      expect((await declare(ann, 2 * MiB + 1)).status).toBe(507)
      expect((await declare(ann, 2 * MiB)).status).toBe(201)
      // usedBytes keeps its meaning: the files kept, not the sessions open.
      expect(await ann.usedBytes()).toBe(0)
    },
  )

  it.skipIf(!available)(
    'concurrent inits with plain fetch: exactly the ones that fit together succeed',
    async () => {
      const ann = await someone()
      // Eight 3 MiB inits at once into 10 MiB: three fit, never four.
      const replies = await Promise.all(Array.from({ length: 8 }, () => declare(ann, 3 * MiB)))
      const statuses = replies.map((reply) => reply.status).sort()
      expect(statuses.filter((status) => status === 201)).toHaveLength(3)
      expect(statuses.filter((status) => status === 507)).toHaveLength(5)
    },
  )

  it.skipIf(!available)('abort releases the reservation', async () => {
    const ann = await someone()
    const held = await declare(ann, 8 * MiB)
    expect(held.status).toBe(201)
    expect((await declare(ann, 8 * MiB)).status).toBe(507)
    expect((await ann.delete(`/upload/${held.body.uploadId}`)).status).toBe(204)
    expect((await declare(ann, 8 * MiB)).status).toBe(201)
  })

  it.skipIf(!available)(
    'complete hands the reservation over to the file; a new version reserves only its growth',
    async () => {
      const ann = await someone()
      const bytes = randomBytes(6 * MiB)
      const init = await ann.init('six.bin', bytes)
      expect(init.status).toBe(201)
      expect((await declare(ann, 6 * MiB)).status).toBe(507)
      const chunks = chunksOf(bytes)
      for (const index of init.body.chunksNeeded as number[]) {
        expect((await ann.putChunk(init.body.uploadId, index, chunks[index] as Buffer)).status).toBe(200)
      }
      expect((await ann.post(`/upload/${init.body.uploadId}/complete`)).status).toBe(201)
      expect(await ann.usedBytes()).toBe(6 * MiB)
      // 6 MiB used and nothing held: 4 MiB fit, and are held now.
      const four = await declare(ann, 4 * MiB)
      expect(four.status).toBe(201)
      expect((await declare(ann, 1)).status).toBe(507)
      // A new version of six.bin, the same size or smaller, grows nothing, so reserves nothing.
      expect((await declare(ann, 6 * MiB, 'six.bin')).status).toBe(201)
      // One of 7 MiB grows it by 1 MiB, which does not fit.
      expect((await declare(ann, 7 * MiB, 'six.bin')).status).toBe(507)
    },
  )

  it.skipIf(!available)('an editor’s sessions hold the folder owner’s quota', async () => {
    const ann = await someone()
    const bob = await someone()
    const shared = (await ann.post('/folders', { name: 'Shared' })).body
    const invited = await ann.post(`/folders/${shared.id}/members`, { email: bob.user.email, role: 'editor' })
    expect(invited.status).toBe(201)
    const intoAnns = (size: number) =>
      plainRequest(server.api, 'POST', '/upload/init', bob.token, {
        filename: `b-${randomBytes(4).toString('hex')}.bin`,
        size,
        folderId: shared.id,
        chunkHashes: randomHashes(Math.ceil(size / (4 * MiB))),
      })
    expect((await intoAnns(8 * MiB)).status).toBe(201)
    // Ann's quota is what the session holds, not Bob's: her own 8 MiB no longer fit...
    expect((await declare(ann, 8 * MiB)).status).toBe(507)
    // ... while Bob's own quota is untouched.
    expect((await declare(bob, 8 * MiB)).status).toBe(201)
  })

  /** Ann's folder `name`, shared with a new user Bob as an editor. */
  const sharedWithEditor = async (ann: ApiClient, name = 'Shared') => {
    const bob = await someone()
    const folder = (await ann.post('/folders', { name })).body
    const invited = await ann.post(`/folders/${folder.id}/members`, { email: bob.user.email, role: 'editor' })
    expect(invited.status).toBe(201)
    return { bob, folder }
  }
  /** An init of `bytes` into `folderId` (4 MiB chunks), with plain fetch. */
  const declareInto = (client: ApiClient, folderId: string, bytes: Buffer) =>
    plainRequest(server.api, 'POST', '/upload/init', client.token, {
      filename: `in-${randomBytes(4).toString('hex')}.bin`,
      size: bytes.length,
      folderId,
      chunkHashes: chunksOf(bytes).map(sha256),
    })
  /** What each request of a session answers its uploader: a chunk PUT, check, prove and complete. */
  const sessionAnswers = async (client: ApiClient, uploadId: string, bytes: Buffer) => {
    const chunk = chunksOf(bytes)[0] as Buffer
    const put = await fetch(`${server.api}/upload/${uploadId}/chunk/0`, {
      method: 'PUT',
      headers: { authorization: `Bearer ${client.token}`, 'x-chunk-hash': sha256(chunk) },
      body: chunk,
    })
    await put.arrayBuffer()
    const session = (op: string, body?: unknown) =>
      plainRequest(server.api, 'POST', `/upload/${uploadId}/${op}`, client.token, body)
    return {
      put: put.status,
      check: (await session('check')).status,
      prove: (await session('prove', { proofs: {} })).status,
      complete: (await session('complete')).status,
    }
  }

  it.skipIf(!available)(
    'removing an editor ends their sessions at once: the owner’s quota is free, and the session 404 to them',
    async () => {
      const ann = await someone()
      const { bob, folder } = await sharedWithEditor(ann)
      const bytes = randomBytes(10 * MiB)
      const hog = await declareInto(bob, folder.id, bytes)
      expect(hog.status).toBe(201)
      expect((await declare(ann, MiB)).status).toBe(507)
      expect((await ann.delete(`/folders/${folder.id}/members/${bob.user.id}`)).status).toBe(204)
      expect((await declare(ann, MiB)).status).toBe(201)
      expect(await sessionAnswers(bob, hog.body.uploadId, bytes)).toEqual({
        put: 404,
        check: 404,
        prove: 404,
        complete: 404,
      })
      // A member who leaves ends theirs alike (Ann holds 1 MiB herself now).
      const other = await sharedWithEditor(ann, 'Again')
      const held = await declareInto(other.bob, other.folder.id, randomBytes(9 * MiB))
      expect(held.status).toBe(201)
      expect((await declare(ann, MiB)).status).toBe(507)
      const left = await other.bob.delete(`/folders/${other.folder.id}/members/${other.bob.user.id}`)
      expect(left.status).toBe(204)
      expect((await declare(ann, MiB)).status).toBe(201)
    },
  )

  it.skipIf(!available)(
    'every request of a session re-checks its folder: 404 while it is trashed, usable again once restored',
    async () => {
      const ann = await someone()
      const { bob, folder } = await sharedWithEditor(ann)
      const bytes = randomBytes(MiB)
      const session = await declareInto(bob, folder.id, bytes)
      expect(session.status).toBe(201)
      expect((await ann.delete(`/folders/${folder.id}`)).status).toBe(204)
      expect(await sessionAnswers(bob, session.body.uploadId, bytes)).toEqual({
        put: 404,
        check: 404,
        prove: 404,
        complete: 404,
      })
      expect((await ann.post(`/trash/${folder.id}/restore`, {})).status).toBe(200)
      expect(await sessionAnswers(bob, session.body.uploadId, bytes)).toEqual({
        put: 200,
        check: 200,
        prove: 200,
        complete: 201,
      })
    },
  )

  it.skipIf(!available)(
    'sessions into a purged folder hold nothing; while it is in the trash they still hold',
    async () => {
      const ann = await someone()
      const { bob, folder } = await sharedWithEditor(ann)
      const sub = (await ann.post('/folders', { name: 'Sub', parentId: folder.id })).body
      // Bob's, into the folder, and Ann's own, into one below it, fill her quota.
      expect((await declareInto(bob, folder.id, randomBytes(5 * MiB))).status).toBe(201)
      expect((await declareInto(ann, sub.id, randomBytes(5 * MiB))).status).toBe(201)
      expect((await declare(ann, MiB)).status).toBe(507)
      // In the trash, the folder may come back and the sessions complete: they still hold.
      expect((await ann.delete(`/folders/${folder.id}`)).status).toBe(204)
      expect((await declare(ann, MiB)).status).toBe(507)
      expect((await ann.delete(`/trash/${folder.id}`)).status).toBe(204)
      expect((await declare(ann, 10 * MiB)).status).toBe(201)
    },
  )

  it.skipIf(!available)('one user may have only so many sessions open: one more is 429', async () => {
    const ann = await someone()
    const open = []
    for (let i = 0; i < MAX_OPEN; i++) {
      const reply = await declare(ann, 0)
      expect(reply.status).toBe(201)
      open.push(reply.body.uploadId as string)
    }
    const refused = await fetch(`${server.api}/upload/init`, {
      method: 'POST',
      headers: { authorization: `Bearer ${ann.token}`, 'content-type': 'application/json' },
      body: JSON.stringify({ filename: 'one-more.bin', size: 0, chunkHashes: [] }),
    })
    expect(refused.status).toBe(429)
    const body = (await refused.json()) as { error: { code: string; message: string } }
    expect(body.error.code).toBe('TOO_MANY_UPLOADS')
    expect(body.error.message).toMatch(/complete or abort one/)
    // The oldest session expires within a day: that is when a place frees up at the latest.
    const retryAfter = Number(refused.headers.get('retry-after'))
    expect(retryAfter).toBeGreaterThan(0)
    expect(retryAfter).toBeLessThanOrEqual(DAY / 1000)
    // Another user is not affected, and an abort makes room.
    expect((await declare(await someone(), 0)).status).toBe(201)
    expect((await ann.delete(`/upload/${open[0]}`)).status).toBe(204)
    expect((await declare(ann, 0)).status).toBe(201)
  })

  // Last: it moves the server's clock a day on.
  it.skipIf(!available)('expiry releases the reservation, and the sweep removes the session', async () => {
    const ann = await someone()
    const held = await declare(ann, 8 * MiB)
    expect(held.status).toBe(201)
    expect((await declare(ann, 8 * MiB)).status).toBe(507)
    server.advance(DAY + 1000)
    expect(await server.services.uploads.sweepExpired()).toBeGreaterThanOrEqual(1)
    expect((await ann.post(`/upload/${held.body.uploadId}/check`)).status).toBe(404)
    expect((await declare(ann, 8 * MiB)).status).toBe(201)
  })
})

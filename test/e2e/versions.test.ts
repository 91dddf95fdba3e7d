import { randomBytes, randomUUID } from 'node:crypto'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { copiesOnDisk, rowCopyOnDisk } from '../gc/gc-helpers.js'
import { ApiClient, CHUNK, chunksOf, sha256 } from '../helpers/api-client.js'
import { DATABASES } from '../helpers/databases.js'
import { startTestServer, type TestServer } from '../helpers/test-server.js'

const GRACE_SECONDS = 60
/** No background upkeep: the tests run the collector, the sweep and the trash themselves. */
const QUIET = { GC_GRACE_SECONDS: String(GRACE_SECONDS), GC_INTERVAL_SECONDS: '0' }
const DAY = 24 * 3600_000

const usedBytes = async (client: ApiClient): Promise<number> => {
  const me = await client.get('/auth/me')
  expect(me.status).toBe(200)
  return me.body.user.usedBytes
}
const versionsOf = (client: ApiClient, fileId: string) => client.get(`/files/${fileId}/versions`)
const downloadVersion = (client: ApiClient, fileId: string, version: number | string) =>
  client.get<Buffer>(`/files/${fileId}/versions/${version}/download`)
const restoreVersion = (client: ApiClient, fileId: string, version: number | string) =>
  client.post(`/files/${fileId}/versions/${version}/restore`)

/** A download answered 200 with exactly these bytes (compared by SHA-256). */
function expectBytes(reply: { status: number; body: Buffer }, bytes: Buffer): void {
  expect(reply.status).toBe(200)
  expect(sha256(reply.body)).toBe(sha256(bytes))
}

function expectNotFound(reply: { status: number; body: any }): void {
  expect(reply.status).toBe(404)
  expect(reply.body).toMatchObject({ error: { code: 'NOT_FOUND' } })
}

/** The same bytes with one byte changed at `offset`. */
function withByteChanged(bytes: Buffer, offset: number): Buffer {
  const copy = Buffer.from(bytes)
  copy[offset] = (copy[offset] as number) ^ 0xff
  return copy
}

/**
 * Runs the collector until `garbage` is gone: a run marks it, the bytes stay for the grace
 * period (a run within it deletes nothing), and a run after it deletes them.
 */
async function collectGarbage(server: TestServer, garbage: readonly string[]): Promise<void> {
  await server.services.gc.run()
  await server.services.gc.run()
  for (const hash of garbage) expect(await rowCopyOnDisk(server, hash)).toBe(true)
  server.advance((GRACE_SECONDS + 1) * 1000)
  const report = await server.services.gc.run()
  expect(report.errors).toEqual([])
}

describe.each(DATABASES)('versions on %s', ({ name: backend, available }) => {
  let server: TestServer
  let bob: ApiClient
  const fresh = () => new ApiClient(server.api).register()

  beforeAll(async () => {
    if (!available) return
    server = await startTestServer(backend, QUIET)
    bob = await fresh()
  })
  afterAll(async () => server?.stop())

  it.skipIf(!available)(
    'makes every upload to an existing name a new version, listed newest first, each downloadable',
    async () => {
      const ann = await fresh()
      const dir = (await ann.post('/folders', { name: 'Reports' })).body
      const contents = [randomBytes(3000), randomBytes(10), randomBytes(CHUNK + 5)]
      const uploaded: any[] = []
      for (const bytes of contents) {
        uploaded.push(await ann.upload('q3.pdf', bytes, { folderId: dir.id }))
        expect(await usedBytes(ann)).toBe(bytes.length)
        server.advance(1000)
      }
      const [v1, v2, v3] = uploaded
      expect(new Set(uploaded.map((file) => file.id)).size).toBe(1)
      expect(uploaded.map((file) => file.version)).toEqual([1, 2, 3])
      expect(v3).toMatchObject({ name: 'q3.pdf', folderId: dir.id, size: CHUNK + 5 })

      const listed = await versionsOf(ann, v1.id)
      expect(listed.status).toBe(200)
      expect(listed.body).toEqual({
        versions: [v3, v2, v1].map((file) => ({
          version: file.version,
          size: file.size,
          contentHash: file.contentHash,
          createdAt: file.updatedAt,
        })),
      })
      const times = listed.body.versions.map((v: any) => Date.parse(v.createdAt))
      expect(times[0]).toBeGreaterThan(times[1])
      expect(times[1]).toBeGreaterThan(times[2])

      for (const [index, bytes] of contents.entries()) {
        const download = await downloadVersion(ann, v1.id, index + 1)
        expectBytes(download, bytes)
        expect(download.headers.get('etag')).toBe(`"${uploaded[index].contentHash}"`)
      }
      expectBytes(await ann.download(v1.id), contents[2] as Buffer)
      expect((await ann.get(`/files/${v1.id}`)).body).toEqual(v3)
      // Only the current version counts against the quota.
      expect(await usedBytes(ann)).toBe(CHUNK + 5)

      // The same name in another folder is another file, not a version.
      const elsewhere = await ann.upload('q3.pdf', Buffer.from('root copy'))
      expect(elsewhere.id).not.toBe(v1.id)
      expect(elsewhere.version).toBe(1)
      expect((await versionsOf(ann, v1.id)).body.versions).toHaveLength(3)

      for (const version of [4, 0, -1, 'abc', '1.5', '01x']) {
        expectNotFound(await downloadVersion(ann, v1.id, version))
        expectNotFound(await restoreVersion(ann, v1.id, version))
      }
    },
  )

  it.skipIf(!available)(
    'restores an old version as a new one, keeps history, and follows it in usedBytes',
    async () => {
      const ann = await fresh()
      const big = randomBytes(5000)
      const small = randomBytes(1200)
      const v1 = await ann.upload('plan.txt', big)
      const v2 = await ann.upload('plan.txt', small)
      expect(await usedBytes(ann)).toBe(1200)
      const sizeListed = async () =>
        (await ann.get('/files')).body.items.map((i: any) => [i.name, i.size, i.version])
      expect(await sizeListed()).toEqual([['plan.txt', 1200, 2]])
      const chunksBefore = await server.services.meta.audit.countLive()

      const restored = await restoreVersion(ann, v1.id, 1)
      expect(restored.status).toBe(200)
      expect(restored.body).toEqual({
        ...v2,
        version: 3,
        size: 5000,
        contentHash: v1.contentHash,
        updatedAt: restored.body.updatedAt,
      })
      expect((await ann.get(`/files/${v1.id}`)).body).toEqual(restored.body)
      expect(await usedBytes(ann)).toBe(5000)
      expect(await sizeListed()).toEqual([['plan.txt', 5000, 3]])
      expectBytes(await ann.download(v1.id), big)
      // The restored version shares the old one's chunks: nothing new is stored.
      expect(await server.services.meta.audit.countLive()).toBe(chunksBefore)
      const chunk = await server.services.meta.chunks.find(sha256(big))
      expect(chunk?.refCount).toBe(2)

      const history = (await versionsOf(ann, v1.id)).body.versions
      expect(history.map((v: any) => [v.version, v.size, v.contentHash])).toEqual([
        [3, 5000, v1.contentHash],
        [2, 1200, v2.contentHash],
        [1, 5000, v1.contentHash],
      ])
      expectBytes(await downloadVersion(ann, v1.id, 1), big)
      expectBytes(await downloadVersion(ann, v1.id, 2), small)
      expectBytes(await downloadVersion(ann, v1.id, 3), big)

      // Restoring an older, smaller version gives the space back.
      const again = await restoreVersion(ann, v1.id, 2)
      expect(again.status).toBe(200)
      expect(again.body).toMatchObject({ id: v1.id, version: 4, size: 1200, contentHash: v2.contentHash })
      expect(await usedBytes(ann)).toBe(1200)
      expectBytes(await ann.download(v1.id), small)
      expect((await versionsOf(ann, v1.id)).body.versions.map((v: any) => v.version)).toEqual([4, 3, 2, 1])
      expect(await sizeListed()).toEqual([['plan.txt', 1200, 4]])
      const report = await server.services.scrubber.run()
      expect(report.refCountMismatches).toEqual([])
    },
  )

  it.skipIf(!available)(
    'shares unchanged chunks between versions: a 1-byte edit stores one chunk',
    async () => {
      const ann = await fresh()
      const original = randomBytes(3 * CHUNK + 100)
      const edited = withByteChanged(original, CHUNK + 12345)
      const file = await ann.upload('video.mov', original)
      const rowsBefore = await server.services.meta.audit.countLive()

      const init = await ann.init('video.mov', edited)
      expect(init.status).toBe(201)
      expect(init.body).toMatchObject({ chunksNeeded: [1], chunksToProve: [], chunksExisting: 3 })
      const changed = chunksOf(edited)[1] as Buffer
      expect((await ann.putChunk(init.body.uploadId, 1, changed)).status).toBe(200)
      const done = await ann.post(`/upload/${init.body.uploadId}/complete`)
      expect(done.status).toBe(201)
      expect(done.body.file).toMatchObject({ id: file.id, version: 2, size: edited.length })

      expect(await server.services.meta.audit.countLive()).toBe(rowsBefore + 1)
      const oldHashes = chunksOf(original).map(sha256)
      const newHashes = chunksOf(edited).map(sha256)
      for (const index of [0, 2, 3]) {
        expect(newHashes[index]).toBe(oldHashes[index])
        expect((await server.services.meta.chunks.find(oldHashes[index] as string))?.refCount).toBe(2)
      }
      expect((await server.services.meta.chunks.find(oldHashes[1] as string))?.refCount).toBe(1)
      expect((await server.services.meta.chunks.find(newHashes[1] as string))?.refCount).toBe(1)
      expect(await rowCopyOnDisk(server, newHashes[1] as string)).toBe(true)

      expectBytes(await downloadVersion(ann, file.id, 1), original)
      expectBytes(await downloadVersion(ann, file.id, 2), edited)
      expectBytes(await ann.download(file.id), edited)
      expect(await usedBytes(ann)).toBe(edited.length)
    },
  )

  it.skipIf(!available)(
    "answers 404 for another user's, unknown, malformed and trashed files' versions",
    async () => {
      const ann = await fresh()
      const file = await ann.upload('mine.txt', Buffer.from('one'))
      await ann.upload('mine.txt', Buffer.from('two'))
      for (const id of [file.id, randomUUID(), 'garbage', '..']) {
        expectNotFound(await versionsOf(bob, id))
        expectNotFound(await downloadVersion(bob, id, 1))
        expectNotFound(await restoreVersion(bob, id, 1))
      }
      // A folder has no versions.
      const folder = (await ann.post('/folders', { name: 'not-a-file' })).body
      expectNotFound(await versionsOf(ann, folder.id))
      expectNotFound(await restoreVersion(ann, folder.id, 1))
      // Bob's attempts changed nothing.
      expect((await versionsOf(ann, file.id)).body.versions.map((v: any) => v.version)).toEqual([2, 1])

      // A file in the trash has no reachable history until it is restored.
      expect((await ann.delete(`/files/${file.id}`)).status).toBe(204)
      expectNotFound(await versionsOf(ann, file.id))
      expectNotFound(await downloadVersion(ann, file.id, 1))
      expectNotFound(await restoreVersion(ann, file.id, 1))
      expect((await ann.post(`/trash/${file.id}/restore`)).status).toBe(200)
      expect((await versionsOf(ann, file.id)).body.versions.map((v: any) => v.version)).toEqual([2, 1])
      expectBytes(await downloadVersion(ann, file.id, 1), Buffer.from('one'))
    },
  )

  it.skipIf(!available)(
    'purges all versions with the file; their chunks are collected, shared ones survive',
    async () => {
      const ann = await fresh()
      const shared = randomBytes(CHUNK)
      const sharedWithBob = randomBytes(CHUNK)
      const v1 = Buffer.concat([shared, sharedWithBob, randomBytes(700)])
      const v2 = withByteChanged(v1, 2 * CHUNK + 3)
      const file = await ann.upload('album.zip', v1)
      await ann.upload('album.zip', v2)
      const keep = Buffer.concat([shared, randomBytes(50)])
      const kept = await ann.upload('keep.zip', keep)
      const bobs = Buffer.concat([sharedWithBob, randomBytes(60)])
      const bobFile = await bob.upload('bob.zip', bobs)
      expect(await usedBytes(ann)).toBe(v2.length + keep.length)

      expect((await ann.delete(`/files/${file.id}`)).status).toBe(204)
      expect(await usedBytes(ann)).toBe(v2.length + keep.length)
      const purge = await ann.delete(`/trash/${file.id}`)
      expect(purge.status).toBe(204)
      expect(purge.body.length).toBe(0)
      expect(await usedBytes(ann)).toBe(keep.length)
      expectNotFound(await ann.get(`/files/${file.id}`))
      expectNotFound(await versionsOf(ann, file.id))
      expectNotFound(await downloadVersion(ann, file.id, 1))
      expectNotFound(await ann.post(`/trash/${file.id}/restore`))
      expectNotFound(await ann.delete(`/trash/${file.id}`))

      const [sharedHash, bobHash, tail1] = chunksOf(v1).map(sha256) as [string, string, string]
      const tail2 = sha256(chunksOf(v2)[2] as Buffer)
      expect((await server.services.meta.chunks.find(tail1))?.refCount).toBe(0)
      expect((await server.services.meta.chunks.find(tail2))?.refCount).toBe(0)
      expect((await server.services.meta.chunks.find(sharedHash))?.refCount).toBe(1)
      expect((await server.services.meta.chunks.find(bobHash))?.refCount).toBe(1)

      // Marked as garbage, then the same bytes are uploaded again before the grace period
      // ends: that chunk must survive the collector; the other one goes.
      await server.services.gc.run()
      const again = await ann.upload('again.zip', v1)
      expect((await server.services.meta.chunks.find(tail1))?.refCount).toBe(1)
      await collectGarbage(server, [tail2])
      expect(await copiesOnDisk(server.dataDir, tail2)).toEqual([])
      expect(await server.services.meta.chunks.find(tail2)).toBeNull()
      for (const survivor of [sharedHash, bobHash, tail1])
        expect(await rowCopyOnDisk(server, survivor)).toBe(true)
      expectBytes(await ann.download(again.id), v1)
      expectBytes(await ann.download(kept.id), keep)
      expectBytes(await bob.download(bobFile.id), bobs)
      const scrub = await server.services.scrubber.run()
      expect(scrub.clean).toBe(true)
    },
  )
})

describe.each(DATABASES)('version restore against the quota on %s', ({ name: backend, available }) => {
  let server: TestServer
  beforeAll(async () => {
    if (!available) return
    server = await startTestServer(backend, { ...QUIET, DEFAULT_QUOTA_BYTES: '1000' })
  })
  afterAll(async () => server?.stop())

  it.skipIf(!available)(
    'answers 507 QUOTA_EXCEEDED for a restore that does not fit, and changes nothing',
    async () => {
      const ann = await new ApiClient(server.api).register()
      const large = randomBytes(800)
      const small = randomBytes(100)
      const file = await ann.upload('draft.bin', large)
      await ann.upload('draft.bin', small)
      const other = await ann.upload('other.bin', randomBytes(500))
      expect(await usedBytes(ann)).toBe(600)

      const refused = await restoreVersion(ann, file.id, 1)
      expect(refused.status).toBe(507)
      expect(refused.body).toMatchObject({ error: { code: 'QUOTA_EXCEEDED' } })
      expect(await usedBytes(ann)).toBe(600)
      expect((await versionsOf(ann, file.id)).body.versions.map((v: any) => v.version)).toEqual([2, 1])
      expect((await ann.get(`/files/${file.id}`)).body).toMatchObject({ version: 2, size: 100 })
      expectBytes(await ann.download(file.id), small)

      // A trashed file still counts; purging it makes room.
      await ann.delete(`/files/${other.id}`)
      expect((await restoreVersion(ann, file.id, 1)).status).toBe(507)
      expect((await ann.delete(`/trash/${other.id}`)).status).toBe(204)
      expect(await usedBytes(ann)).toBe(100)
      const restored = await restoreVersion(ann, file.id, 1)
      expect(restored.status).toBe(200)
      expect(restored.body).toMatchObject({ id: file.id, version: 3, size: 800 })
      expect(await usedBytes(ann)).toBe(800)
      expectBytes(await ann.download(file.id), large)
    },
  )
})

describe.each(DATABASES)('version retention on %s', ({ name: backend, available }) => {
  let server: TestServer
  /** How far the test moved the server's clock (for `history.sweep(now)`). */
  let advanced = 0
  const advance = (ms: number) => {
    advanced += ms
    server.advance(ms)
  }
  beforeAll(async () => {
    if (!available) return
    server = await startTestServer(backend, { ...QUIET, VERSION_MAX_COUNT: '3', VERSION_MAX_AGE_DAYS: '1' })
  })
  afterAll(async () => server?.stop())

  it.skipIf(!available)(
    'keeps at most VERSION_MAX_COUNT versions: the oldest go, and their unique chunks are collected',
    async () => {
      const ann = await new ApiClient(server.api).register()
      const prefix = randomBytes(CHUNK)
      const contents = Array.from({ length: 5 }, () => Buffer.concat([prefix, randomBytes(300)]))
      let file: any
      for (const [index, bytes] of contents.entries()) {
        file = await ann.upload('log.bin', bytes)
        expect(file.version).toBe(index + 1)
        const versions = (await versionsOf(ann, file.id)).body.versions.map((v: any) => v.version)
        const expected = [index + 1, index, index - 1].filter((v) => v >= 1)
        expect(versions).toEqual(expected)
        expect(await usedBytes(ann)).toBe(bytes.length)
      }
      for (const dropped of [1, 2]) {
        expectNotFound(await downloadVersion(ann, file.id, dropped))
        expectNotFound(await restoreVersion(ann, file.id, dropped))
      }
      for (const keptVersion of [3, 4, 5])
        expectBytes(await downloadVersion(ann, file.id, keptVersion), contents[keptVersion - 1] as Buffer)

      const tails = contents.map((bytes) => sha256(chunksOf(bytes)[1] as Buffer))
      expect((await server.services.meta.chunks.find(tails[0] as string))?.refCount).toBe(0)
      expect((await server.services.meta.chunks.find(tails[1] as string))?.refCount).toBe(0)
      expect((await server.services.meta.chunks.find(sha256(prefix)))?.refCount).toBe(3)

      advanced += (GRACE_SECONDS + 1) * 1000
      await collectGarbage(server, tails.slice(0, 2))
      expect(await copiesOnDisk(server.dataDir, tails[0] as string)).toEqual([])
      expect(await copiesOnDisk(server.dataDir, tails[1] as string)).toEqual([])
      for (const hash of [sha256(prefix), ...tails.slice(2)])
        expect(await rowCopyOnDisk(server, hash)).toBe(true)
      expectBytes(await ann.download(file.id), contents[4] as Buffer)
      expect((await server.services.scrubber.run()).clean).toBe(true)

      // A restore counts as a version too: the oldest kept one (3) goes.
      const restored = await restoreVersion(ann, file.id, 3)
      expect(restored.body).toMatchObject({ version: 6, size: contents[2]?.length })
      expect((await versionsOf(ann, file.id)).body.versions.map((v: any) => v.version)).toEqual([6, 5, 4])
      expectBytes(await downloadVersion(ann, file.id, 6), contents[2] as Buffer)
      expectNotFound(await downloadVersion(ann, file.id, 3))
    },
  )

  it.skipIf(!available)(
    'drops versions older than VERSION_MAX_AGE_DAYS in the sweep, never the current one',
    async () => {
      const ann = await new ApiClient(server.api).register()
      const old = randomBytes(400)
      const current = randomBytes(500)
      const file = await ann.upload('aging.txt', old)
      await ann.upload('aging.txt', current)
      const other = await ann.upload('single.txt', randomBytes(10))

      advance(2 * DAY)
      expect((await server.services.history.sweep(Date.now() + advanced)).pruned).toBeGreaterThanOrEqual(1)
      expect((await versionsOf(ann, file.id)).body.versions).toEqual([
        expect.objectContaining({ version: 2, size: 500 }),
      ])
      expectNotFound(await downloadVersion(ann, file.id, 1))
      expectBytes(await ann.download(file.id), current)
      expect((await versionsOf(ann, other.id)).body.versions.map((v: any) => v.version)).toEqual([1])
      expect(await usedBytes(ann)).toBe(510)
      expect((await server.services.meta.chunks.find(sha256(old)))?.refCount).toBe(0)
    },
  )
})

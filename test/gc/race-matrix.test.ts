import { randomBytes } from 'node:crypto'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { ApiClient, hmac, sha256 } from '../helpers/api-client.js'
import { DATABASES } from '../helpers/databases.js'
import { startTestServer, type TestServer } from '../helpers/test-server.js'
import {
  concat,
  deleteAndPurge,
  expectCollected,
  expectScrubClean,
  expectStored,
  GRACE_MS,
  gcAfterGrace,
  initParts,
  markedGarbage,
  PAST_GRACE_MS,
  randomParts,
  UPLOAD_TTL_MS,
  uploadParts,
} from './gc-helpers.js'

/**
 * The collector against the operations that make chunks needed again, over HTTP on the real
 * server. The clock is virtual: every collector run below happens after the grace period has
 * passed, so that whatever the collector may take, it takes.
 */

type Uploader = 'another user' | 'the same user'
/** How the uploader shows it holds the chunks the server already has. */
type ProofBy = 'hmac' | 'upload'

/** The file X (chunks 0, 1, 2) becomes garbage; the upload is X0 X1 N X2 with one new chunk N. */
const X_INDEXES = [0, 1, 3]
const NEW_INDEX = 2

/** Where a collector run can fall between the steps of the upload, when the garbage is still there. */
function positionsOf(proofBy: ProofBy): string[] {
  const puts = proofBy === 'upload' ? [0, 1, 2, 3] : [NEW_INDEX]
  return [
    'before-init',
    'after-init',
    ...puts.map((i) => `after-put-${i}`),
    ...(proofBy === 'hmac' ? ['after-prove'] : []),
    'after-complete',
  ]
}

describe.each(DATABASES)('gc race matrix on %s', ({ name: backend, available }) => {
  let server: TestServer
  const fresh = () => new ApiClient(server.api).register()

  beforeAll(async () => {
    if (!available) return
    server = await startTestServer(backend, {
      // Only the collector runs of the tests, never the server's own upkeep.
      GC_INTERVAL_SECONDS: '0',
      // The version restore case lets retention drop the version being restored.
      VERSION_MAX_COUNT: '2',
      VERSION_THINNING: 'false',
    })
  })
  afterAll(async () => server?.stop())

  /**
   * Ann uploads X, deletes and purges it, and a collector run marks its chunks. Then `uploader`
   * uploads the same bytes with one new chunk, step by step; at every position `gcAt` picks, the
   * clock passes the grace period and the collector runs.
   */
  async function dedupAgainstMarkedGarbage(
    uploader: Uploader,
    proofBy: ProofBy,
    gcAt: (p: string) => boolean,
  ) {
    const ann = await fresh()
    const x = randomParts(3)
    const xHashes = x.map(sha256)
    const garbage = await uploadParts(ann, 'x.bin', x)
    await deleteAndPurge(ann, garbage.id)
    await server.services.gc.run()
    expect(await markedGarbage(server)).toEqual(expect.arrayContaining(xHashes))

    const client = uploader === 'the same user' ? ann : await fresh()
    const parts = [x[0], x[1], randomBytes(1500), x[2]] as Buffer[]
    const hashes = parts.map(sha256)
    /** Hashes whose bytes the server holds and must keep. */
    const held = new Set(xHashes)
    let collectedBeforeInit = false
    const positions: string[] = []
    const at = async (position: string) => {
      positions.push(position)
      if (!gcAt(position)) return
      await gcAfterGrace(server)
      if (position === 'before-init') {
        // Nothing protects marked garbage once the grace period is over: it goes.
        await expectCollected(server, xHashes, position)
        held.clear()
        collectedBeforeInit = true
      } else {
        await expectStored(server, [...held], position)
      }
    }

    await at('before-init')
    const init = await initParts(client, 'y.bin', parts)
    expect(init.status).toBe(201)
    const { uploadId, proofNonce } = init.body
    expect(init.body.chunksNeeded).toEqual(collectedBeforeInit ? [0, 1, 2, 3] : [NEW_INDEX])
    // Even its former owner must prove it: a purged file shows nothing about who holds the bytes.
    expect(init.body.chunksToProve).toEqual(collectedBeforeInit ? [] : X_INDEXES)
    await at('after-init')

    const toPut = proofBy === 'upload' ? [0, 1, 2, 3] : (init.body.chunksNeeded as number[])
    for (const index of toPut) {
      const hash = hashes[index] as string
      const put = await client.putChunk(uploadId, index, parts[index] as Buffer)
      expect(put.status, JSON.stringify(put.body)).toBe(200)
      expect(put.body.deduplicated).toBe(held.has(hash))
      held.add(hash)
      await at(`after-put-${index}`)
    }
    const toProve = init.body.chunksToProve as number[]
    if (proofBy === 'hmac' && toProve.length > 0) {
      const proofs = Object.fromEntries(toProve.map((i) => [i, hmac(proofNonce, parts[i] as Buffer)]))
      const proved = await client.post(`/upload/${uploadId}/prove`, { proofs })
      expect(proved.status, JSON.stringify(proved.body)).toBe(200)
      expect(proved.body).toMatchObject({ chunksNeeded: [], chunksToProve: [] })
      await at('after-prove')
    }
    const done = await client.post(`/upload/${uploadId}/complete`)
    expect(done.status, JSON.stringify(done.body)).toBe(201)
    await at('after-complete')

    if (!collectedBeforeInit) expect(positions).toEqual(positionsOf(proofBy))
    // Whatever happened on the way, the file is whole and stays whole.
    await gcAfterGrace(server)
    await gcAfterGrace(server)
    await expectStored(server, hashes, 'finally')
    for (const hash of hashes) {
      expect((await server.services.meta.chunks.find(hash))?.refCount, hash).toBe(1)
    }
    const download = await client.download(done.body.file.id)
    expect(download.status).toBe(200)
    expect(download.body.equals(concat(parts))).toBe(true)
    await expectScrubClean(server)
  }

  for (const uploader of ['another user', 'the same user'] as const) {
    for (const proofBy of ['hmac', 'upload'] as const) {
      describe(`${uploader} re-uploads marked garbage, proving by ${proofBy}`, () => {
        for (const position of positionsOf(proofBy)) {
          it.skipIf(!available)(`gc only ${position}`, () =>
            dedupAgainstMarkedGarbage(uploader, proofBy, (p) => p === position),
          )
        }
        it.skipIf(!available)('gc at every position', () =>
          dedupAgainstMarkedGarbage(uploader, proofBy, () => true),
        )
        it.skipIf(!available)('gc at every position from init on', () =>
          dedupAgainstMarkedGarbage(uploader, proofBy, (p) => p !== 'before-init'),
        )
      })
    }
  }

  it.skipIf(!available)('a marked chunk that a dedup hit references again survives the sweep', async () => {
    const [ann, bob] = [await fresh(), await fresh()]
    const x = randomParts(3)
    const xHashes = x.map(sha256)
    await deleteAndPurge(ann, (await uploadParts(ann, 'x.bin', x)).id)
    await server.services.gc.run()
    // The grace period is over: the next run would claim them.
    server.advance(PAST_GRACE_MS)
    expect(await markedGarbage(server)).toEqual(expect.arrayContaining(xHashes))

    const file = await uploadParts(bob, 'x-again.bin', x)
    expect(await markedGarbage(server)).not.toEqual(expect.arrayContaining([xHashes[0]]))
    const report = await server.services.gc.run()
    expect(report.errors).toEqual([])
    await expectStored(server, xHashes)
    await gcAfterGrace(server)
    await expectStored(server, xHashes)
    for (const hash of xHashes) expect((await server.services.meta.chunks.find(hash))?.refCount).toBe(1)
    expect((await bob.download(file.id)).body.equals(concat(x))).toBe(true)
    await expectScrubClean(server)
  })

  it.skipIf(!available)(
    'a session opened before the chunks became garbage protects them through mark and sweep',
    async () => {
      const [ann, bob] = [await fresh(), await fresh()]
      const x = randomParts(3)
      const xHashes = x.map(sha256)
      const original = await uploadParts(ann, 'x.bin', x)
      const init = await initParts(bob, 'x-bob.bin', x)
      expect(init.body).toMatchObject({ chunksNeeded: [], chunksToProve: [0, 1, 2] })
      await deleteAndPurge(ann, original.id)
      await server.services.gc.run()
      for (let run = 0; run < 3; run++) {
        await gcAfterGrace(server)
        await expectStored(server, xHashes, `run ${run}`)
      }
      const proofs = Object.fromEntries(x.map((part, i) => [i, hmac(init.body.proofNonce, part)]))
      expect((await bob.post(`/upload/${init.body.uploadId}/prove`, { proofs })).status).toBe(200)
      const done = await bob.post(`/upload/${init.body.uploadId}/complete`)
      expect(done.status).toBe(201)
      await gcAfterGrace(server)
      await gcAfterGrace(server)
      await expectStored(server, xHashes)
      expect((await bob.download(done.body.file.id)).body.equals(concat(x))).toBe(true)
      await expectScrubClean(server)
    },
  )

  it.skipIf(!available)(
    'an expired upload session no longer protects its chunks; an open paused one does, run after run',
    async () => {
      const ann = await fresh()
      const abandoned = randomParts(3)
      const abandonedHashes = abandoned.map(sha256)
      const first = await initParts(ann, 'abandoned.bin', abandoned)
      for (const [i, part] of abandoned.entries()) {
        expect((await ann.putChunk(first.body.uploadId, i, part)).status).toBe(200)
      }
      // Marked while their session is open: marking does not look at sessions, claiming does.
      await server.services.gc.run()
      expect(await markedGarbage(server)).not.toEqual(expect.arrayContaining([abandonedHashes[0]]))

      server.advance(UPLOAD_TTL_MS - GRACE_MS)
      const paused = randomParts(4)
      const pausedHashes = paused.map(sha256)
      const second = await initParts(ann, 'paused.bin', paused)
      for (const i of [0, 2])
        expect((await ann.putChunk(second.body.uploadId, i, paused[i] as Buffer)).status).toBe(200)
      // The first session has an hour left: its chunks stay.
      expect((await server.services.gc.run()).errors).toEqual([])
      await expectStored(server, abandonedHashes, 'before expiry')

      // Past the first session's expiry and a grace period after the mark.
      const afterExpiry = await gcAfterGrace(server)
      expect(afterExpiry.expiredUploads).toBeGreaterThanOrEqual(1)
      await expectCollected(server, abandonedHashes, 'after expiry')
      expect((await ann.putChunk(first.body.uploadId, 1, abandoned[1] as Buffer)).status).toBe(404)
      expect((await ann.post(`/upload/${first.body.uploadId}/complete`)).status).toBe(404)

      // The paused session is 2 h old; ten more runs, a grace period apart, stay within its 24 h.
      for (let run = 0; run < 10; run++) {
        await gcAfterGrace(server)
        await expectStored(server, [pausedHashes[0], pausedHashes[2]] as string[], `paused run ${run}`)
      }
      const resumed = await ann.post(`/upload/${second.body.uploadId}/check`)
      expect(resumed.body.chunksNeeded).toEqual([1, 3])
      for (const i of [1, 3])
        expect((await ann.putChunk(second.body.uploadId, i, paused[i] as Buffer)).status).toBe(200)
      const done = await ann.post(`/upload/${second.body.uploadId}/complete`)
      expect(done.status).toBe(201)
      await gcAfterGrace(server)
      await gcAfterGrace(server)
      expect((await ann.download(done.body.file.id)).body.equals(concat(paused))).toBe(true)
      await expectScrubClean(server)
    },
  )

  it.skipIf(!available)(
    'restoring versions, with retention dropping the one restored from, keeps every referenced chunk',
    async () => {
      const ann = await fresh()
      const v1 = randomParts(2) // a, b
      const v2 = randomParts(2) // c, d
      const [a, b, c, d] = [...v1, ...v2].map(sha256) as [string, string, string, string]
      const file = await uploadParts(ann, 'doc.bin', v1)
      expect((await uploadParts(ann, 'doc.bin', v2)).version).toBe(2)
      // Garbage next door: another file shares chunk a, and is purged (its own chunk e goes).
      const eOnly = randomBytes(700)
      const other = await uploadParts(ann, 'other.bin', [v1[0] as Buffer, eOnly])
      await deleteAndPurge(ann, other.id)
      await server.services.gc.run()
      expect(await markedGarbage(server)).toEqual(expect.arrayContaining([sha256(eOnly)]))
      expect(await markedGarbage(server)).not.toEqual(expect.arrayContaining([a]))

      const versionsNow = async () => {
        const reply = await ann.get(`/files/${file.id}/versions`)
        expect(reply.status).toBe(200)
        return (reply.body.versions as any[]).map((v) => v.version)
      }
      const versionBytes = async (n: number) =>
        (await ann.get(`/files/${file.id}/versions/${n}/download`)).body
      const afterStep = async (label: string, stored: string[]) => {
        await gcAfterGrace(server)
        await expectStored(server, stored, label)
      }

      expect(await versionsNow()).toEqual([2, 1])
      await afterStep('after listing', [a, b, c, d])
      await expectCollected(server, [sha256(eOnly)])

      const restored = await ann.post(`/files/${file.id}/versions/1/restore`)
      expect(restored.status).toBe(200)
      expect(restored.body.version).toBe(3)
      // Retention keeps two: version 1 went in the same transaction that referenced its chunks again.
      expect(await versionsNow()).toEqual([3, 2])
      await afterStep('after restoring v1', [a, b, c, d])
      expect((await ann.download(file.id)).body.equals(concat(v1))).toBe(true)
      expect((await versionBytes(2)).equals(concat(v2))).toBe(true)
      await afterStep('after downloading', [a, b, c, d])

      expect((await ann.post(`/files/${file.id}/versions/2/restore`)).body.version).toBe(4)
      expect(await versionsNow()).toEqual([4, 3])
      await afterStep('after restoring v2', [a, b, c, d])
      expect((await ann.download(file.id)).body.equals(concat(v2))).toBe(true)
      expect((await versionBytes(3)).equals(concat(v1))).toBe(true)
      for (const hash of [a, b, c, d])
        expect((await server.services.meta.chunks.find(hash))?.refCount).toBe(1)
      await expectScrubClean(server)

      // A fifth version pushes out version 3, the last to name a and b: now they are garbage.
      const v5 = randomParts(1)
      await uploadParts(ann, 'doc.bin', v5)
      expect(await versionsNow()).toEqual([5, 4])
      await afterStep('after v5', [c, d, sha256(v5[0] as Buffer)])
      await gcAfterGrace(server)
      await expectCollected(server, [a, b])
      expect((await versionBytes(4)).equals(concat(v2))).toBe(true)
      expect((await ann.download(file.id)).body.equals(concat(v5))).toBe(true)
      await expectScrubClean(server)
    },
  )

  it.skipIf(!available)(
    'a deleted file and folder outlive any number of gc runs and restore whole',
    async () => {
      const ann = await fresh()
      const loose = randomParts(3)
      const nested = randomParts(2)
      const folder = await ann.post('/folders', { name: 'projects' })
      expect(folder.status).toBe(201)
      const looseFile = await uploadParts(ann, 'loose.bin', loose)
      const nestedFile = await uploadParts(ann, 'nested.bin', nested, { folderId: folder.body.id })
      const hashes = [...loose, ...nested].map(sha256)

      expect((await ann.delete(`/files/${looseFile.id}`)).status).toBe(204)
      expect((await ann.delete(`/folders/${folder.body.id}`)).status).toBe(204)
      await gcAfterGrace(server)
      await gcAfterGrace(server)
      await expectStored(server, hashes, 'in the trash')
      const trash = await ann.get('/trash')
      expect((trash.body.items as any[]).map((item) => item.id).sort()).toEqual(
        [looseFile.id, folder.body.id].sort(),
      )

      expect((await ann.post(`/trash/${looseFile.id}/restore`)).status).toBe(200)
      await gcAfterGrace(server)
      expect((await ann.post(`/trash/${folder.body.id}/restore`)).status).toBe(200)
      await gcAfterGrace(server)
      await gcAfterGrace(server)
      await expectStored(server, hashes, 'restored')
      expect((await ann.download(looseFile.id)).body.equals(concat(loose))).toBe(true)
      expect((await ann.download(nestedFile.id)).body.equals(concat(nested))).toBe(true)
      await expectScrubClean(server)
    },
  )
})

import { execFile } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { readFile, unlink, writeFile } from 'node:fs/promises'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import {
  concat,
  copiesOnDisk,
  deleteAndPurge,
  gcAfterGrace,
  initParts,
  randomParts,
  rowCopyPath,
  uploadParts,
} from '../gc/gc-helpers.js'
import { ApiClient, hmac, sha256 } from '../helpers/api-client.js'
import { DATABASES } from '../helpers/databases.js'
import { holdsReleasedAfterEach } from '../helpers/pause.js'
import { startTestServer, type TestServer } from '../helpers/test-server.js'

/**
 * Stored bytes that go bad (bit rot, a lost file) and versions that go away while a download
 * reads them, as a client sees it over HTTP: a download never completes with wrong bytes or
 * promises bytes it cannot send, the damage is marked and counted, and an upload of the good
 * bytes repairs every file that holds them.
 */

/** What a plain `fetch` client got: the status, the bytes that arrived, and whether the body broke off. */
interface Received {
  status: number
  declaredLength: number
  bytes: Buffer
  brokeOff: boolean
  json: any
}

async function fetchDownload(url: string, token: string | undefined): Promise<Received> {
  const response = await fetch(url, { headers: token ? { authorization: `Bearer ${token}` } : {} })
  const declaredLength = Number(response.headers.get('content-length') ?? -1)
  const pieces: Buffer[] = []
  let brokeOff = false
  try {
    for await (const piece of response.body ?? []) pieces.push(Buffer.from(piece))
  } catch {
    brokeOff = true
  }
  const bytes = Buffer.concat(pieces)
  const isJson = (response.headers.get('content-type') ?? '').includes('json')
  return {
    status: response.status,
    declaredLength,
    bytes,
    brokeOff,
    json: isJson ? JSON.parse(bytes.toString()) : null,
  }
}

/**
 * curl as an operator would run it: its exit code (18: the body ended before its Content-Length;
 * 22: an error status) and the status it got.
 */
function curlDownload(url: string, token: string): Promise<{ code: number; status: string }> {
  return new Promise((resolve) => {
    execFile(
      'curl',
      ['-sS', '--fail', '-o', '/dev/null', '-w', '%{http_code}', '-H', `authorization: Bearer ${token}`, url],
      (error, stdout) => resolve({ code: error ? Number(error.code) : 0, status: stdout.trim() }),
    )
  })
}

/** One figure of `/metrics`: the sample whose name and labels are `sample` exactly. */
async function metric(server: TestServer, sample: string): Promise<number> {
  const text = await (await fetch(`${server.url}/metrics`)).text()
  const line = text.split('\n').find((l) => l.startsWith(`${sample} `))
  return line === undefined ? 0 : Number(line.slice(sample.length + 1))
}

const DETECTED_ON_DOWNLOAD = 'tessera_chunk_damage_detected_total{source="download"}'
const DAMAGED_NOW = 'tessera_chunks_damaged'

async function flipOneByte(path: string, at: number): Promise<void> {
  const bytes = await readFile(path)
  bytes[at] = (bytes[at] as number) ^ 0x40
  await writeFile(path, bytes)
}

describe.each(DATABASES)('stored bytes that go bad, on %s', ({ name: backend, available }) => {
  let server: TestServer
  const fresh = () => new ApiClient(server.api).register()
  const downloadUrl = (fileId: string, version?: number) =>
    version === undefined
      ? `${server.api}/files/${fileId}/download`
      : `${server.api}/files/${fileId}/versions/${version}/download`

  beforeAll(async () => {
    if (!available) return
    server = await startTestServer(backend, {
      GC_INTERVAL_SECONDS: '0',
      VERSION_MAX_COUNT: '2',
      VERSION_THINNING: 'false',
    })
  })
  afterAll(async () => server?.stop())

  it.skipIf(!available)(
    'a flipped byte: the download breaks off, the chunk is marked and counted, later downloads are 500 before any byte, and one upload of the bytes repairs every file holding them',
    async () => {
      const [ann, bob] = [await fresh(), await fresh()]
      const parts = randomParts(3, 64 * 1024)
      const shared = parts[1] as Buffer
      const annFile = await uploadParts(ann, 'a.bin', parts)
      // HEAD tells what a GET would send, without reading a byte.
      const total = concat(parts).length
      const head = await fetch(downloadUrl(annFile.id), {
        method: 'HEAD',
        headers: { authorization: `Bearer ${ann.token}` },
      })
      expect([head.status, head.headers.get('content-length')]).toEqual([200, String(total)])
      const headRange = await fetch(downloadUrl(annFile.id), {
        method: 'HEAD',
        headers: { authorization: `Bearer ${ann.token}`, range: 'bytes=5-9' },
      })
      expect([headRange.status, headRange.headers.get('content-length')]).toEqual([206, '5'])
      // Bob's own file holds the same middle chunk: one copy serves both.
      const bobParts = [randomBytes(5000), shared]
      const bobFile = await uploadParts(bob, 'b.bin', bobParts)
      const rotten = sha256(shared)
      const detectedBefore = await metric(server, DETECTED_ON_DOWNLOAD)
      await flipOneByte(await rowCopyPath(server, rotten), 1000)

      const broken = await fetchDownload(downloadUrl(annFile.id), ann.token)
      expect(broken.status).toBe(200)
      expect(broken.brokeOff).toBe(true)
      // Never the bad chunk whole: its last piece is held back until its hash is checked.
      expect(broken.bytes.length).toBeLessThan((parts[0] as Buffer).length + shared.length)
      expect(broken.bytes.subarray(0, (parts[0] as Buffer).length).equals(parts[0] as Buffer)).toBe(true)
      expect(await metric(server, DETECTED_ON_DOWNLOAD)).toBe(detectedBefore + 1)
      expect(await metric(server, DAMAGED_NOW)).toBe(1)
      expect((await server.services.meta.chunks.find(rotten))?.damaged).toBe(true)

      // Known now: an error answer before the headers, for every file that holds the chunk.
      for (const [client, file] of [
        [ann, annFile],
        [bob, bobFile],
      ] as const) {
        const refused = await fetchDownload(downloadUrl(file.id), client.token)
        expect(refused.status).toBe(500)
        expect(refused.json.error.code).toBe('CONTENT_DAMAGED')
      }
      // An error answer, not the content's: no validator, no attachment, no range; HEAD alike.
      const ranged = await fetch(downloadUrl(annFile.id), {
        headers: { authorization: `Bearer ${ann.token}`, range: `bytes=${(parts[0] as Buffer).length}-` },
      })
      expect(ranged.status).toBe(500)
      for (const header of ['etag', 'content-disposition', 'content-range']) {
        expect(ranged.headers.get(header), header).toBeNull()
      }
      const headDamaged = await fetch(downloadUrl(annFile.id), {
        method: 'HEAD',
        headers: { authorization: `Bearer ${ann.token}` },
      })
      expect(headDamaged.status).toBe(500)
      const curl = await curlDownload(downloadUrl(annFile.id), ann.token as string)
      expect(curl).toEqual({ code: 22, status: '500' })
      // A range that does not touch the damaged chunk is still served.
      const first = await ann.download(annFile.id, { range: `bytes=0-${(parts[0] as Buffer).length - 1}` })
      expect(first.status).toBe(206)
      expect(first.body.equals(parts[0] as Buffer)).toBe(true)

      // Uploads stop deduplicating against it: the bytes are asked for again, even from an owner.
      const again = await initParts(ann, 'again.bin', parts)
      expect(again.status).toBe(201)
      expect(again.body.chunksNeeded).toEqual([1])
      const put = await ann.putChunk(again.body.uploadId, 1, shared)
      expect(put.status).toBe(200)
      expect(put.body.deduplicated).toBe(false)
      expect((await ann.post(`/upload/${again.body.uploadId}/complete`)).status).toBe(201)

      for (const [client, file, bytes] of [
        [ann, annFile, concat(parts)],
        [bob, bobFile, concat(bobParts)],
      ] as const) {
        const repaired = await client.download(file.id)
        expect(repaired.status).toBe(200)
        expect(repaired.body.equals(bytes)).toBe(true)
      }
      // The damaged copy is gone; the repaired chunk has exactly one.
      expect(await copiesOnDisk(server.dataDir, rotten)).toEqual([await rowCopyPath(server, rotten)])
      expect(await metric(server, DAMAGED_NOW)).toBe(0)
      const scrub = await server.services.scrubber.run()
      expect(scrub.clean, JSON.stringify(scrub)).toBe(true)
    },
  )

  it.skipIf(!available)(
    'a chunk file gone: the download breaks off and marks it; an upload of the bytes stores them again',
    async () => {
      const ann = await fresh()
      const parts = randomParts(2, 32 * 1024)
      const file = await uploadParts(ann, 'gone.bin', parts)
      const lost = sha256(parts[1] as Buffer)
      await unlink(await rowCopyPath(server, lost))

      expect(await curlDownload(downloadUrl(file.id), ann.token as string)).toEqual({
        code: 18,
        status: '200',
      })
      expect((await server.services.meta.chunks.find(lost))?.damaged).toBe(true)
      const refused = await fetchDownload(downloadUrl(file.id), ann.token)
      expect(refused.status).toBe(500)
      expect(refused.json.error.code).toBe('CONTENT_DAMAGED')

      const again = await initParts(ann, 'gone.bin', parts, { baseVersion: 1 })
      expect(again.body.chunksNeeded).toEqual([1])
      const put = await ann.putChunk(again.body.uploadId, 1, parts[1] as Buffer)
      expect(put.body.deduplicated).toBe(false)
      expect((await ann.post(`/upload/${again.body.uploadId}/complete`)).status).toBe(201)
      expect((await ann.download(file.id)).body.equals(concat(parts))).toBe(true)
    },
  )

  it.skipIf(!available)(
    'a chunk PUT finds a recorded chunk whose file is gone and stores the bytes again, not "deduplicated"',
    async () => {
      const ann = await fresh()
      const parts = randomParts(2, 16 * 1024)
      const file = await uploadParts(ann, 'lost.bin', parts)
      const lost = sha256(parts[0] as Buffer)
      await unlink(await rowCopyPath(server, lost))
      // Nobody has noticed yet: the row still says sound, so nothing is asked for...
      const again = await initParts(ann, 'lost.bin', parts, { baseVersion: 1 })
      expect(again.body.chunksNeeded).toEqual([])
      // ...but a client that sends the bytes anyway has them stored.
      const put = await ann.putChunk(again.body.uploadId, 0, parts[0] as Buffer)
      expect(put.status).toBe(200)
      expect(put.body.deduplicated).toBe(false)
      expect(await copiesOnDisk(server.dataDir, lost)).toEqual([await rowCopyPath(server, lost)])
      expect((await ann.download(file.id)).body.equals(concat(parts))).toBe(true)
    },
  )

  it.skipIf(!available)(
    'a chunk PUT finds a recorded copy of the wrong length and stores the bytes again',
    async () => {
      const ann = await fresh()
      const parts = randomParts(2, 16 * 1024)
      const file = await uploadParts(ann, 'short.bin', parts)
      const hash = sha256(parts[1] as Buffer)
      const path = await rowCopyPath(server, hash)
      await writeFile(path, (await readFile(path)).subarray(0, 1000))
      const again = await initParts(ann, 'short.bin', parts, { baseVersion: 1 })
      const put = await ann.putChunk(again.body.uploadId, 1, parts[1] as Buffer)
      expect(put.body.deduplicated).toBe(false)
      expect(await copiesOnDisk(server.dataDir, hash)).toEqual([await rowCopyPath(server, hash)])
      expect((await ann.download(file.id)).body.equals(concat(parts))).toBe(true)
      await ann.delete(`/upload/${again.body.uploadId}`)
    },
  )

  it.skipIf(!available)(
    'scrub marks what it finds, and open sessions and new ones ask for it again',
    async () => {
      const [ann, bob] = [await fresh(), await fresh()]
      const parts = randomParts(2, 8 * 1024)
      await uploadParts(ann, 'scrubbed.bin', parts)
      const rotten = sha256(parts[0] as Buffer)
      const open = await initParts(ann, 'open.bin', parts)
      expect(open.body.chunksNeeded).toEqual([])
      await flipOneByte(await rowCopyPath(server, rotten), 7)

      const report = await server.services.scrubber.run()
      expect(report.corrupt.map((c) => c.hash)).toEqual([rotten])
      expect(report.markedDamaged).toEqual([rotten])
      expect(report.damaged).toBe(1)
      expect(report.clean).toBe(false)

      const checked = await ann.post(`/upload/${open.body.uploadId}/check`)
      expect(checked.body.chunksNeeded).toEqual([0])
      // Another user is asked for the bytes, not for a proof against damaged ones.
      const bobs = await initParts(bob, 'copy.bin', parts)
      expect(bobs.body.chunksNeeded).toEqual([0])
      expect(bobs.body.chunksToProve).toEqual([1])
      // Repaired by bob's upload; ann's open session then needs nothing again.
      expect((await bob.putChunk(bobs.body.uploadId, 0, parts[0] as Buffer)).body.deduplicated).toBe(false)
      expect((await ann.post(`/upload/${open.body.uploadId}/check`)).body.chunksNeeded).toEqual([])
      expect((await server.services.scrubber.run()).clean).toBe(true)
      await ann.delete(`/upload/${open.body.uploadId}`)
      await bob.delete(`/upload/${bobs.body.uploadId}`)
    },
  )

  it.skipIf(!available)(
    'a proof checked against damaged bytes is refused with "upload it instead", and marks them',
    async () => {
      const [ann, bob] = [await fresh(), await fresh()]
      const parts = randomParts(1, 4096)
      await uploadParts(ann, 'proof.bin', parts)
      const hash = sha256(parts[0] as Buffer)
      await flipOneByte(await rowCopyPath(server, hash), 0)
      const init = await initParts(bob, 'proof.bin', parts)
      expect(init.body.chunksToProve).toEqual([0])
      const proved = await bob.post(`/upload/${init.body.uploadId}/prove`, {
        proofs: { 0: hmac(init.body.proofNonce, parts[0] as Buffer) },
      })
      expect(proved.status).toBe(400)
      expect(proved.body.error.message).toMatch(/upload it instead/)
      expect((await server.services.meta.chunks.find(hash))?.damaged).toBe(true)
      expect((await bob.putChunk(init.body.uploadId, 0, parts[0] as Buffer)).body.deduplicated).toBe(false)
      expect((await bob.post(`/upload/${init.body.uploadId}/complete`)).status).toBe(201)
    },
  )

  describe('versions that go away during a download', () => {
    const hold = holdsReleasedAfterEach()

    it.skipIf(!available)(
      'pruned between the request and its first byte: 404, never a 200 promising bytes it does not send',
      async () => {
        const ann = await fresh()
        const v1 = randomParts(2, 8 * 1024)
        const file = await uploadParts(ann, 'pruned.bin', v1)
        await uploadParts(ann, 'pruned.bin', randomParts(2, 8 * 1024))
        const held = hold('download.before-plan')
        const downloading = fetchDownload(downloadUrl(file.id, 1), ann.token)
        await held.arrived
        // VERSION_MAX_COUNT=2: a third version drops the first.
        await uploadParts(ann, 'pruned.bin', randomParts(2, 8 * 1024))
        held.release()
        const answer = await downloading
        expect(answer.status).toBe(404)
        expect(answer.json.error.code).toBe('NOT_FOUND')
      },
    )

    it.skipIf(!available)(
      'collected while it streams: the connection is cut, and nothing is marked damaged',
      async () => {
        const ann = await fresh()
        // The first chunk stays in every version: it goes out, then the stream reaches the others.
        const kept = randomBytes(64 * 1024)
        const later = () => [kept, ...randomParts(2, 64 * 1024)]
        const v1 = later()
        const file = await uploadParts(ann, 'collected.bin', v1)
        await uploadParts(ann, 'collected.bin', later())
        const detectedBefore = await metric(server, DETECTED_ON_DOWNLOAD)
        const held = hold('download.after-plan')
        const downloading = fetchDownload(downloadUrl(file.id, 1), ann.token)
        await held.arrived
        await uploadParts(ann, 'collected.bin', later())
        await server.services.gc.run()
        await gcAfterGrace(server)
        for (const part of v1.slice(1)) expect(await copiesOnDisk(server.dataDir, sha256(part))).toEqual([])
        held.release()
        const answer = await downloading
        expect(answer.status).toBe(200)
        expect(answer.brokeOff).toBe(true)
        expect(answer.bytes.length).toBeLessThan(answer.declaredLength)
        expect(answer.bytes.subarray(0, kept.length).equals(kept)).toBe(true)
        expect(await metric(server, DETECTED_ON_DOWNLOAD)).toBe(detectedBefore)
        expect(await server.services.meta.audit.countDamaged()).toBe(0)
      },
    )
  })

  it.skipIf(!available)(
    'deleting and purging still collects repaired chunks and their old copies',
    async () => {
      const ann = await fresh()
      const parts = randomParts(1, 2048)
      const file = await uploadParts(ann, 'temp.bin', parts)
      const hash = sha256(parts[0] as Buffer)
      await flipOneByte(await rowCopyPath(server, hash), 3)
      await server.services.scrubber.run()
      const again = await initParts(ann, 'temp.bin', parts, { baseVersion: 1 })
      await ann.putChunk(again.body.uploadId, 0, parts[0] as Buffer)
      await ann.post(`/upload/${again.body.uploadId}/complete`)
      await deleteAndPurge(ann, file.id)
      await server.services.gc.run()
      await gcAfterGrace(server)
      expect(await copiesOnDisk(server.dataDir, hash)).toEqual([])
      expect(await server.services.meta.chunks.find(hash)).toBeNull()
    },
  )
})

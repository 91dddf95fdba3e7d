import { randomBytes } from 'node:crypto'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { ApiClient, sha256 } from '../helpers/api-client.js'
import { DATABASES } from '../helpers/databases.js'
import { holdAt } from '../helpers/pause.js'
import { type PlainReply, plainRequest } from '../helpers/plain-requests.js'
import { startTestServer, type TestServer } from '../helpers/test-server.js'

/**
 * `complete` of one upload session, asked for many times at once (a client retrying on a
 * timeout, two tabs), or raced by an abort. Exactly one complete commits; every other one of
 * the same session answers what that one made, never a second version of it.
 *
 * Two versions kept per file, no thinning: a complete that made a second version of the same
 * content would push the user's real previous version out of its history at once.
 */
const RETENTION = { VERSION_MAX_COUNT: '2', VERSION_THINNING: 'false', GC_INTERVAL_SECONDS: '0' }
const CONCURRENT_COMPLETES = 10
const ROUNDS = 5
const RACES = 10
const DAY = 24 * 3600_000

/** The bytes cut into `pieces` chunks, declared with `chunkSizes` (more chunks, more work per complete). */
function declaration(bytes: Buffer, pieces: number) {
  const size = Math.ceil(bytes.length / pieces)
  const chunks: Buffer[] = []
  for (let offset = 0; offset < bytes.length; offset += size)
    chunks.push(bytes.subarray(offset, offset + size))
  return {
    chunks,
    body: {
      size: bytes.length,
      chunkHashes: chunks.map(sha256),
      chunkSizes: chunks.map((chunk) => chunk.length),
    },
  }
}

/** An upload session with every chunk in: only `complete` is left. Answers its id. */
async function prepare(
  client: ApiClient,
  filename: string,
  bytes: Buffer,
  extra: Record<string, unknown> = {},
): Promise<string> {
  const { chunks, body } = declaration(bytes, 8)
  const init = await client.post('/upload/init', { filename, ...body, ...extra })
  expect(init.status, JSON.stringify(init.body)).toBe(201)
  for (const index of init.body.chunksNeeded as number[]) {
    const put = await client.putChunk(init.body.uploadId, index, chunks[index] as Buffer)
    expect(put.status, JSON.stringify(put.body)).toBe(200)
  }
  expect(init.body.chunksToProve).toEqual([])
  return init.body.uploadId
}

const completeOnce = (server: TestServer, client: ApiClient, uploadId: string) =>
  plainRequest(server.api, 'POST', `/upload/${uploadId}/complete`, client.token)
const abortOnce = (server: TestServer, client: ApiClient, uploadId: string) =>
  plainRequest(server.api, 'DELETE', `/upload/${uploadId}`, client.token)

/** `count` completes of one session, all sent before any is answered. */
const completeConcurrently = (server: TestServer, client: ApiClient, uploadId: string, count: number) =>
  Promise.all(Array.from({ length: count }, () => completeOnce(server, client, uploadId)))

function expectUploadNotFound(reply: PlainReply): void {
  expect(reply.status, JSON.stringify(reply.body)).toBe(404)
  expect(reply.body).toMatchObject({ error: { code: 'UPLOAD_NOT_FOUND' } })
}

const latestCursor = async (client: ApiClient): Promise<string> =>
  (await client.get('/sync/latest')).body.cursor

/** The journal entries after `cursor` (one page, which must be all of them). */
async function changesSince(client: ApiClient, cursor: string): Promise<any[]> {
  const page = await client.get(`/sync/changes?cursor=${encodeURIComponent(cursor)}`)
  expect(page.status).toBe(200)
  expect(page.body.hasMore).toBe(false)
  return page.body.changes
}

/** Every file (and folder) name in the user's root. */
async function rootNames(client: ApiClient): Promise<string[]> {
  const listing = await client.get('/files')
  expect(listing.status).toBe(200)
  expect(listing.body.nextCursor).toBeNull()
  return listing.body.items.map((item: any) => item.name)
}

describe.each(DATABASES)('complete races on %s', ({ name: backend, available }) => {
  let server: TestServer
  const fresh = () => new ApiClient(server.api).register()

  beforeAll(async () => {
    if (available) server = await startTestServer(backend, RETENTION)
  })
  afterAll(async () => server?.stop())

  it.skipIf(!available)(
    `${CONCURRENT_COMPLETES} concurrent completes of one session make one version, round after round`,
    async () => {
      const ann = await fresh()
      const contents: Buffer[] = []
      let fileId: string | undefined
      for (let round = 0; round < ROUNDS; round++) {
        const bytes = randomBytes(4000 + round * 100)
        contents.push(bytes)
        const uploadId = await prepare(ann, 'report.txt', bytes)
        const cursor = await latestCursor(ann)

        const replies = await completeConcurrently(server, ann, uploadId, CONCURRENT_COMPLETES)

        const statuses = replies.map((reply) => reply.status)
        expect(statuses, JSON.stringify(replies.map((reply) => reply.body))).toEqual(
          Array(CONCURRENT_COMPLETES).fill(201),
        )
        const first = replies[0]?.body
        // One file, one version, and the same answer for every request: the same `file` and `conflict`.
        expect(new Set(replies.map((reply) => reply.body.file.id)).size).toBe(1)
        expect(replies.map((reply) => reply.body.file.version)).toEqual(
          Array(CONCURRENT_COMPLETES).fill(round + 1),
        )
        for (const reply of replies) expect(reply.body).toEqual(first)
        expect(first).toMatchObject({ conflict: false, file: { name: 'report.txt', size: bytes.length } })
        fileId ??= first.file.id
        expect(first.file.id).toBe(fileId)

        // The history has exactly one new version, and (two kept) the real previous one beside it.
        const versions = (await ann.get(`/files/${fileId}/versions`)).body.versions
        expect(versions.map((v: any) => v.version)).toEqual(round === 0 ? [1] : [round + 1, round])
        expect(versions[0]).toMatchObject({ size: bytes.length, contentHash: first.file.contentHash })
        if (round > 0) {
          const previous = await ann.get(`/files/${fileId}/versions/${round}/download`)
          expect(previous.status).toBe(200)
          expect(sha256(previous.body)).toBe(sha256(contents[round - 1] as Buffer))
        }
        expect(await ann.downloadedHash(fileId as string)).toBe(sha256(bytes))

        // One journal entry for it, whatever the number of requests.
        const changes = await changesSince(ann, cursor)
        expect(changes).toEqual([
          expect.objectContaining({
            action: round === 0 ? 'create' : 'update',
            kind: 'file',
            id: fileId,
            version: round + 1,
          }),
        ])
        // The current version counts once.
        expect(await ann.usedBytes()).toBe(bytes.length)
      }
      const scrub = await server.services.scrubber.run()
      expect(scrub.refCountMismatches).toEqual([])
      expect(scrub.danglingReferences).toEqual([])
    },
    120_000,
  )

  it.skipIf(!available)(
    'a complete retried after one succeeded answers the same file, and changes nothing',
    async () => {
      const ann = await fresh()
      await ann.upload('notes.txt', Buffer.from('the real first version'))
      const bytes = randomBytes(3000)
      const uploadId = await prepare(ann, 'notes.txt', bytes)
      const done = await completeOnce(server, ann, uploadId)
      expect(done.status).toBe(201)
      expect(done.body.file).toMatchObject({ version: 2, size: bytes.length })
      const cursor = await latestCursor(ann)

      // The client never heard the answer and asks again, a few times, and once with ApiClient.
      for (let retry = 0; retry < 3; retry++) {
        const again = await completeOnce(server, ann, uploadId)
        expect(again.status).toBe(201)
        expect(again.body).toEqual(done.body)
      }
      const viaClient = await ann.post(`/upload/${uploadId}/complete`)
      expect(viaClient.status).toBe(201)
      expect(viaClient.body).toEqual(done.body)

      const versions = (await ann.get(`/files/${done.body.file.id}/versions`)).body.versions
      expect(versions.map((v: any) => v.version)).toEqual([2, 1])
      expect(await changesSince(ann, cursor)).toEqual([])
      expect(await ann.usedBytes()).toBe(bytes.length)
      // Completed, the session is no longer open: nothing else can be done with it.
      expectUploadNotFound(await plainRequest(server.api, 'POST', `/upload/${uploadId}/check`, ann.token))
      expectUploadNotFound(await abortOnce(server, ann, uploadId))
      // Another user asking to complete it learns nothing.
      const bob = await fresh()
      expectUploadNotFound(await completeOnce(server, bob, uploadId))
    },
  )

  it.skipIf(!available)(
    'a retried complete answers the version it made, even once newer ones exist or the file is in the trash; 404 once purged',
    async () => {
      const ann = await fresh()
      const mine = randomBytes(2000)
      const uploadId = await prepare(ann, 'moving.txt', mine)
      const done = await completeOnce(server, ann, uploadId)
      expect(done.body.file).toMatchObject({ version: 1, size: mine.length })
      // Someone (another device) uploads again, and renames it.
      await ann.upload('moving.txt', randomBytes(3000))
      expect((await ann.patch(`/files/${done.body.file.id}`, { name: 'moved.txt' })).status).toBe(200)

      const again = await completeOnce(server, ann, uploadId)
      expect(again.status).toBe(201)
      expect(again.body.file).toMatchObject({
        id: done.body.file.id,
        version: 1,
        size: mine.length,
        contentHash: done.body.file.contentHash,
        name: 'moved.txt',
      })
      expect(await ann.delete(`/files/${done.body.file.id}`)).toMatchObject({ status: 204 })
      expect((await completeOnce(server, ann, uploadId)).body.file).toMatchObject({ version: 1 })
      expect(await ann.delete(`/trash/${done.body.file.id}`)).toMatchObject({ status: 204 })
      const purged = await completeOnce(server, ann, uploadId)
      expect(purged.status).toBe(404)
      expect(purged.body).toMatchObject({ error: { code: 'NOT_FOUND' } })
    },
  )

  it.skipIf(!available)(
    'concurrent completes with a current baseVersion make no conflicted copy',
    async () => {
      const ann = await fresh()
      const v1 = await ann.upload('plan.txt', Buffer.from('plan, first draft'))
      for (let round = 0; round < 3; round++) {
        const bytes = randomBytes(2000 + round)
        const uploadId = await prepare(ann, 'plan.txt', bytes, { baseVersion: round + 1 })
        const replies = await completeConcurrently(server, ann, uploadId, CONCURRENT_COMPLETES)
        expect(replies.map((reply) => reply.status)).toEqual(Array(CONCURRENT_COMPLETES).fill(201))
        for (const reply of replies) {
          expect(reply.body).toEqual(replies[0]?.body)
          expect(reply.body).toMatchObject({ conflict: false, file: { id: v1.id, version: round + 2 } })
        }
        expect(await rootNames(ann)).toEqual(['plan.txt'])
        expect(await ann.downloadedHash(v1.id)).toBe(sha256(bytes))
      }
    },
  )

  it.skipIf(!available)(
    'concurrent completes with a stale baseVersion make exactly one conflicted copy',
    async () => {
      const ann = await fresh()
      const v1 = await ann.upload('budget.txt', Buffer.from('v1'))
      await ann.upload('budget.txt', Buffer.from('v2 from the laptop'))
      const bytes = Buffer.from('v2 from the phone')
      const uploadId = await prepare(ann, 'budget.txt', bytes, { baseVersion: 1 })
      const cursor = await latestCursor(ann)
      const replies = await completeConcurrently(server, ann, uploadId, CONCURRENT_COMPLETES)
      expect(replies.map((reply) => reply.status)).toEqual(Array(CONCURRENT_COMPLETES).fill(201))
      const copy = replies[0]?.body.file
      for (const reply of replies) expect(reply.body).toEqual({ conflict: true, file: copy })
      expect(copy.id).not.toBe(v1.id)
      expect(copy.name).toMatch(/^budget \(conflicted copy \d{4}-\d{2}-\d{2}\)\.txt$/)

      expect(await rootNames(ann)).toEqual([copy.name, 'budget.txt'].sort())
      expect((await ann.get(`/files/${v1.id}`)).body.version).toBe(2)
      expect(await ann.downloadedHash(copy.id)).toBe(sha256(bytes))
      expect(await changesSince(ann, cursor)).toEqual([
        expect.objectContaining({ action: 'create', id: copy.id, name: copy.name, version: 1 }),
      ])
      expect(await ann.usedBytes()).toBe('v2 from the laptop'.length + bytes.length)
    },
  )

  it.skipIf(!available)(
    'a complete that read the session while another committed it answers that file, not a second version',
    async () => {
      const ann = await fresh()
      const v1 = await ann.upload('held.txt', Buffer.from('the one before'))
      const bytes = randomBytes(1500)
      const uploadId = await prepare(ann, 'held.txt', bytes)
      // Hold the first complete after it has read the session and its chunks, before its
      // transaction: the window in which the old code let both commit.
      const held = holdAt('upload.complete.before-commit')
      try {
        const slow = completeOnce(server, ann, uploadId)
        await held.arrived
        const fast = await completeOnce(server, ann, uploadId)
        expect(fast.status).toBe(201)
        expect(fast.body.file).toMatchObject({ id: v1.id, version: 2 })
        held.release()
        const late = await slow
        expect(late.status, JSON.stringify(late.body)).toBe(201)
        expect(late.body).toEqual(fast.body)
      } finally {
        held.release()
        held.remove()
      }
      const versions = (await ann.get(`/files/${v1.id}/versions`)).body.versions
      expect(versions.map((v: any) => v.version)).toEqual([2, 1])
      expect(versions[1].contentHash).toBe(v1.contentHash)
    },
  )

  it.skipIf(!available)(
    "a complete that lost to another answers the winner's file though the folder was deleted meanwhile",
    async () => {
      const ann = await fresh()
      const folder = await ann.post('/folders', { name: 'Docs' })
      expect(folder.status).toBe(201)
      const uploadId = await prepare(ann, 'in-docs.txt', randomBytes(1100), { folderId: folder.body.id })
      const held = holdAt('upload.complete.before-commit')
      try {
        const slow = completeOnce(server, ann, uploadId)
        await held.arrived
        const fast = await completeOnce(server, ann, uploadId)
        expect(fast.status).toBe(201)
        expect((await ann.delete(`/folders/${folder.body.id}`)).status).toBe(204)
        held.release()
        const late = await slow
        expect(late.status, JSON.stringify(late.body)).toBe(201)
        expect(late.body.file).toMatchObject({ id: fast.body.file.id, version: 1 })
      } finally {
        held.release()
        held.remove()
      }
    },
  )

  it.skipIf(!available)(
    'an abort while a complete is between reading the session and committing: the abort wins alone',
    async () => {
      const ann = await fresh()
      const v1 = await ann.upload('kept.txt', Buffer.from('stays as it is'))
      const uploadId = await prepare(ann, 'kept.txt', randomBytes(1200))
      const held = holdAt('upload.complete.before-commit')
      try {
        const complete = completeOnce(server, ann, uploadId)
        await held.arrived
        const abort = await abortOnce(server, ann, uploadId)
        expect(abort.status).toBe(204)
        held.release()
        expectUploadNotFound(await complete)
      } finally {
        held.release()
        held.remove()
      }
      expect((await ann.get(`/files/${v1.id}`)).body).toEqual(v1)
      expect((await ann.get(`/files/${v1.id}/versions`)).body.versions).toHaveLength(1)
      expectUploadNotFound(await completeOnce(server, ann, uploadId))
    },
  )

  it.skipIf(!available)(`an abort raced against a complete, ${RACES} times: exactly one wins`, async () => {
    const ann = await fresh()
    const v1 = await ann.upload('raced.txt', Buffer.from('version one'))
    const cursor = await latestCursor(ann)
    let version = 1
    let currentSize = 'version one'.length
    const outcomes = { completeWon: 0, abortWon: 0 }
    for (let race = 0; race < RACES; race++) {
      const bytes = randomBytes(1000 + race)
      const uploadId = await prepare(ann, 'raced.txt', bytes)
      // Sent together; which goes first alternates.
      const [complete, abort] =
        race % 2 === 0
          ? await Promise.all([completeOnce(server, ann, uploadId), abortOnce(server, ann, uploadId)])
          : await Promise.all([abortOnce(server, ann, uploadId), completeOnce(server, ann, uploadId)]).then(
              ([a, c]) => [c, a] as const,
            )
      const seen = `complete ${complete.status} ${JSON.stringify(complete.body)}, abort ${abort.status}`
      if (complete.status === 201) {
        outcomes.completeWon++
        version++
        currentSize = bytes.length
        expect(complete.body.file, seen).toMatchObject({ id: v1.id, version })
        expectUploadNotFound(abort)
        // A retry still answers what it made.
        expect((await completeOnce(server, ann, uploadId)).body).toEqual(complete.body)
      } else {
        outcomes.abortWon++
        expect(abort.status, seen).toBe(204)
        expectUploadNotFound(complete)
        expectUploadNotFound(await completeOnce(server, ann, uploadId))
      }
      expect((await ann.get(`/files/${v1.id}`)).body).toMatchObject({ version, size: currentSize })
    }
    expect(outcomes.completeWon + outcomes.abortWon).toBe(RACES)
    // One journal entry per complete that won, none for the others.
    const changes = await changesSince(ann, cursor)
    expect(changes.map((change: any) => [change.action, change.version])).toEqual(
      Array.from({ length: outcomes.completeWon }, (_, i) => ['update', i + 2]),
    )
    expect(await ann.usedBytes()).toBe(currentSize)
    console.info(`abort vs complete on ${backend}: ${JSON.stringify(outcomes)}`)
  })

  // Last: it moves the server's clock a day on.
  it.skipIf(!available)(
    'a session past its expiry answers 404, completed or not; a completion is remembered an hour',
    async () => {
      const ann = await fresh()
      const v1 = await ann.upload('late.txt', Buffer.from('before'))
      const open = await prepare(ann, 'late.txt', randomBytes(800))
      const completed = await prepare(ann, 'other.txt', randomBytes(900))
      const done = await completeOnce(server, ann, completed)
      expect(done.status).toBe(201)
      expect((await completeOnce(server, ann, completed)).body).toEqual(done.body)

      // Completed a minute before it would have expired: its answer is still there for an hour.
      const lastMinute = await prepare(ann, 'last-minute.txt', randomBytes(700))
      server.advance(DAY - 60_000)
      const justInTime = await completeOnce(server, ann, lastMinute)
      expect(justInTime.status).toBe(201)
      server.advance(30 * 60_000)
      expect((await completeOnce(server, ann, lastMinute)).body).toEqual(justInTime.body)

      server.advance(2 * 60_000)
      expectUploadNotFound(await completeOnce(server, ann, open))
      expectUploadNotFound(await completeOnce(server, ann, completed))
      const concurrent = await completeConcurrently(server, ann, open, CONCURRENT_COMPLETES)
      for (const reply of concurrent) expectUploadNotFound(reply)
      expect((await ann.get(`/files/${v1.id}`)).body).toEqual(v1)
      expect((await ann.get(`/files/${done.body.file.id}`)).body).toEqual(done.body.file)
      server.advance(60 * 60_000)
      expectUploadNotFound(await completeOnce(server, ann, lastMinute))
    },
  )
})

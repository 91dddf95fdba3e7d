import { randomBytes } from 'node:crypto'
import { sql } from 'kysely'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { onPausePoint } from '../../src/support/pause-points.js'
import { ApiClient, sha256 } from '../helpers/api-client.js'
import { DATABASES } from '../helpers/databases.js'
import {
  databaseOf,
  type PlainReply,
  plainRequest,
  randomHashes,
  uploadRowsOf,
} from '../helpers/plain-requests.js'
import { startTestServer, type TestServer } from '../helpers/test-server.js'

const GiB = 1024 ** 3
/** The most chunks one file may declare (src/domain/chunk-plan.ts MAX_CHUNKS). */
const MAX_CHUNKS = 65_536
/** 10 GiB in MAX_CHUNKS chunks. */
const SMALL_CHUNK = 160 * 1024
/** The largest init body the server reads. */
const MAX_DECLARATION_BYTES = 8 * 1024 * 1024
/**
 * Room for several 10 GiB declarations per user; nothing here is ever completed. Production's
 * least chunk size (UPLOAD_MIN_CHUNK_BYTES unset: 64 KiB), which 160 KiB chunks meet.
 */
const ENV = { DEFAULT_QUOTA_BYTES: String(1024 * GiB), GC_INTERVAL_SECONDS: '0', UPLOAD_MIN_CHUNK_BYTES: '' }
const LONG = 240_000

/** An init body declaring `count` chunks of `chunkSize` bytes (random hashes: nobody stores them). */
function declaration(filename: string, count: number, chunkSize: number, hashes = count) {
  return {
    filename,
    size: count * chunkSize,
    chunkHashes: randomHashes(hashes),
    chunkSizes: Array<number>(count).fill(chunkSize),
  }
}

const init = (server: TestServer, client: ApiClient, body: unknown) =>
  plainRequest(server.api, 'POST', '/upload/init', client.token, body)

/** The contract's error: `{error: {code, message}}` with this status and code. */
function expectError(reply: PlainReply, status: number, code: string): void {
  expect(reply.status, JSON.stringify(reply.body).slice(0, 300)).toBe(status)
  expect(reply.body).toMatchObject({ error: { code, message: expect.any(String) } })
  expect(reply.body.error.message.length).toBeGreaterThan(0)
}

/**
 * The order in which concurrent operations answered, and for each of the others how many chunks
 * of the declaring user's session were recorded by then: fewer than all means the declaration
 * was still being recorded, whatever the big init's own answer took afterwards.
 */
class Race {
  readonly order: string[] = []
  readonly #declaredWhen = new Map<string, number>()

  constructor(
    private readonly server: TestServer,
    private readonly declarer: ApiClient,
  ) {}

  /** Resolves as `promise` does; notes `label` (for the others, with the declaration's progress). */
  track<T>(label: string, promise: Promise<T>, { other = true } = {}): Promise<T> {
    return promise.then(
      async (value) => {
        this.order.push(label)
        if (other)
          this.#declaredWhen.set(label, (await uploadRowsOf(this.server, this.declarer.user.id)).chunks)
        return value
      },
      (error: unknown) => {
        this.order.push(label)
        throw error
      },
    )
  }

  /** `label` answered before the big init did, and before all of its chunks were recorded. */
  expectAnsweredFirst(label: string): void {
    const order = this.order.join(', ')
    expect(this.order.indexOf(label), order).toBeGreaterThanOrEqual(0)
    expect(this.order.indexOf(label), order).toBeLessThan(this.order.indexOf('big init'))
    expect(this.#declaredWhen.get(label), `${label}: chunks already recorded when it answered`).toBeLessThan(
      MAX_CHUNKS,
    )
  }
}

/**
 * Signals when an upload init is inside its first declaring transaction (the chunks of the
 * first batch classified, not yet recorded): the moment from which a declaration could stall
 * others. `whileHeld` runs there, once, inside that transaction.
 */
function whenDeclaring(whileHeld: () => Promise<void> = async () => {}) {
  let signal!: () => void
  const declaring = new Promise<void>((resolve) => {
    signal = resolve
  })
  let first = true
  const remove = onPausePoint('upload.init.after-classify', async () => {
    if (!first) return
    first = false
    signal()
    await whileHeld()
  })
  return { declaring, remove }
}

describe.each(DATABASES)('large upload declarations on %s', ({ name: backend, available }) => {
  let server: TestServer
  const fresh = () => new ApiClient(server.api).register()

  beforeAll(async () => {
    if (available) server = await startTestServer(backend, ENV)
  })
  afterAll(async () => server?.stop())

  /** Another user's whole small upload: init, one chunk, complete. */
  async function smallUpload(client: ApiClient): Promise<any> {
    const bytes = randomBytes(5000)
    const started = await client.init('small.txt', bytes)
    expect(started.status).toBe(201)
    expect((await client.putChunk(started.body.uploadId, 0, bytes)).status).toBe(200)
    const done = await plainRequest(
      server.api,
      'POST',
      `/upload/${started.body.uploadId}/complete`,
      client.token,
    )
    expect(done.status, JSON.stringify(done.body)).toBe(201)
    return done.body.file
  }

  /** A user with a folder of a few files, to list. */
  async function userWithFolder(): Promise<{ client: ApiClient; folderId: string }> {
    const client = await fresh()
    const folder = await client.post('/folders', { name: 'docs' })
    for (const name of ['a.txt', 'b.txt', 'c.txt'])
      await client.upload(name, randomBytes(100), { folderId: folder.body.id })
    return { client, folderId: folder.body.id }
  }

  function expectAllNeeded(reply: PlainReply): void {
    expect(reply.status, JSON.stringify(reply.body).slice(0, 300)).toBe(201)
    expect(reply.body).toMatchObject({
      totalChunks: MAX_CHUNKS,
      chunkSize: SMALL_CHUNK,
      chunksExisting: 0,
      chunksToProve: [],
    })
    expect(reply.body.chunksNeeded).toHaveLength(MAX_CHUNKS)
    expect(reply.body.chunksNeeded.every((index: number, i: number) => index === i)).toBe(true)
  }

  /** The big session works after the race: check lists every chunk as needed, abort ends it. */
  async function expectUsableThenAbort(client: ApiClient, uploadId: string): Promise<void> {
    const check = await plainRequest(server.api, 'POST', `/upload/${uploadId}/check`, client.token)
    expect(check.status).toBe(200)
    expect(check.body.totalChunks).toBe(MAX_CHUNKS)
    expect(check.body.chunksNeeded).toHaveLength(MAX_CHUNKS)
    expect((await plainRequest(server.api, 'DELETE', `/upload/${uploadId}`, client.token)).status).toBe(204)
    const gone = await plainRequest(server.api, 'POST', `/upload/${uploadId}/check`, client.token)
    expectError(gone, 404, 'UPLOAD_NOT_FOUND')
    expect(await uploadRowsOf(server, client.user.id)).toEqual({ sessions: 0, chunks: 0 })
  }

  it.skipIf(!available)(
    `declares ${MAX_CHUNKS} chunks (10 GiB in 160 KiB chunks): all needed, and the session is usable`,
    async () => {
      const ann = await fresh()
      const body = declaration('huge.bin', MAX_CHUNKS, SMALL_CHUNK)
      expect(body.size).toBe(10 * GiB)
      // One chunk real, so that the session can be shown to take bytes.
      const first = randomBytes(SMALL_CHUNK)
      body.chunkHashes[0] = sha256(first)
      const reply = await init(server, ann, body)
      expectAllNeeded(reply)
      const uploadId = reply.body.uploadId
      expect(await uploadRowsOf(server, ann.user.id)).toEqual({ sessions: 1, chunks: MAX_CHUNKS })

      expect((await ann.putChunk(uploadId, 0, first)).status).toBe(200)
      const check = await plainRequest(server.api, 'POST', `/upload/${uploadId}/check`, ann.token)
      expect(check.status).toBe(200)
      expect(check.body).toMatchObject({ totalChunks: MAX_CHUNKS, chunksExisting: 1 })
      expect(check.body.chunksNeeded).toHaveLength(MAX_CHUNKS - 1)
      expect(check.body.chunksNeeded[0]).toBe(1)
      const incomplete = await plainRequest(server.api, 'POST', `/upload/${uploadId}/complete`, ann.token)
      expectError(incomplete, 409, 'CHUNKS_MISSING')
      expect(incomplete.body.missing).toHaveLength(MAX_CHUNKS - 1)
      expect((await plainRequest(server.api, 'DELETE', `/upload/${uploadId}`, ann.token)).status).toBe(204)
      expect(await uploadRowsOf(server, ann.user.id)).toEqual({ sessions: 0, chunks: 0 })
      expect(await ann.usedBytes()).toBe(0)
    },
    LONG,
  )

  it.skipIf(!available)('refuses more chunks than that with 400, never 500, recording nothing', async () => {
    const ann = await fresh()
    // Bodies with more values than any declaration needs are refused before they are parsed.
    const refusals: Array<[string, unknown, 'INVALID_REQUEST' | 'INVALID_JSON']> = [
      // One chunk too many (1-byte chunks: the body is small; refused for their count, which is
      // checked before their sizes).
      [`${MAX_CHUNKS + 1} chunks`, declaration('one-too-many.bin', MAX_CHUNKS + 1, 1), 'INVALID_REQUEST'],
      // The same in the default 4 MiB chunks: 256 GiB and 4 MiB.
      [
        `${MAX_CHUNKS + 1} fixed-size chunks`,
        {
          filename: 'fixed.bin',
          size: (MAX_CHUNKS + 1) * 4 * 1024 * 1024,
          chunkHashes: randomHashes(MAX_CHUNKS + 1),
        },
        'INVALID_REQUEST',
      ],
      // 10 GiB in 64 KiB chunks, declared by its sizes (163,840 of them) beside MAX_CHUNKS hashes.
      ['10 GiB in 64 KiB chunkSizes', declaration('64k.bin', 163_840, 64 * 1024, MAX_CHUNKS), 'INVALID_JSON'],
      // 130,000 chunkSizes: where `Math.max(...sizes)` overflowed the stack.
      ['130,000 chunkSizes', declaration('many-sizes.bin', 130_000, 1, MAX_CHUNKS), 'INVALID_JSON'],
    ]
    for (const [what, body, code] of refusals) {
      const reply = await init(server, ann, body)
      expect(JSON.stringify(body).length, what).toBeLessThanOrEqual(MAX_DECLARATION_BYTES)
      expectError(reply, 400, code)
      if (code === 'INVALID_REQUEST') expect(reply.body.error.message, what).toMatch(/at most 65536 chunks/)
    }
    expect(await uploadRowsOf(server, ann.user.id)).toEqual({ sessions: 0, chunks: 0 })
  })

  it.skipIf(!available)(
    'a whole declaration of 130,000 or 163,840 chunks is too large a body: 413, never 500',
    async () => {
      const ann = await fresh()
      for (const [count, chunkSize] of [
        // 130,000 chunks: the old stack overflow (a 500) in `Math.max(...sizes)`.
        [130_000, 1],
        // 10 GiB in 64 KiB chunks.
        [163_840, 64 * 1024],
      ] as const) {
        const body = declaration('too-many.bin', count, chunkSize)
        expect(JSON.stringify(body).length).toBeGreaterThan(MAX_DECLARATION_BYTES)
        expectError(await init(server, ann, body), 413, 'PAYLOAD_TOO_LARGE')
      }
      expect(await uploadRowsOf(server, ann.user.id)).toEqual({ sessions: 0, chunks: 0 })
      // The server serves on.
      expect((await ann.get('/auth/me')).status).toBe(200)
    },
    LONG,
  )

  it.skipIf(!available)('reads an init body up to 8 MiB, and answers 413 beyond', async () => {
    const ann = await fresh()
    const bytes = Buffer.from('padded declaration')
    const json = JSON.stringify({ filename: 'padded.txt', size: bytes.length, chunkHashes: [sha256(bytes)] })
    // Whitespace is valid JSON: the same declaration, padded to the limit and one byte past it.
    const padded = (length: number) => json.slice(0, -1) + ' '.repeat(length - json.length) + json.slice(-1)
    const atLimit = await init(server, ann, padded(MAX_DECLARATION_BYTES))
    expect(atLimit.status, JSON.stringify(atLimit.body)).toBe(201)
    const over = await init(server, ann, padded(MAX_DECLARATION_BYTES + 1))
    expectError(over, 413, 'PAYLOAD_TOO_LARGE')
    expect((await uploadRowsOf(server, ann.user.id)).sessions).toBe(1)
  })

  /** Bob's small upload and a listing of his folder, tracked in `race`. */
  const others = (race: Race, bob: ApiClient, folderId: string) =>
    Promise.all([
      race.track('small upload', smallUpload(bob)),
      race.track('listing', plainRequest(server.api, 'GET', `/files?folderId=${folderId}`, bob.token)),
    ])

  it.skipIf(!available)(
    `while ${MAX_CHUNKS} chunks are declared, another user's small upload and a listing finish first`,
    async () => {
      const ann = await fresh()
      const { client: bob, folderId } = await userWithFolder()
      const race = new Race(server, ann)
      const { declaring, remove } = whenDeclaring()
      try {
        const big = init(server, ann, declaration('huge.bin', MAX_CHUNKS, SMALL_CHUNK))
        await declaring
        const [bigReply, [small, listing]] = await Promise.all([
          race.track('big init', big, { other: false }),
          others(race, bob, folderId),
        ])
        console.info(`${backend}, large declaration: answered in the order ${race.order.join(', ')}`)
        expectAllNeeded(bigReply)
        expect(small).toMatchObject({ name: 'small.txt', size: 5000, version: 1 })
        expect(listing.status).toBe(200)
        expect(listing.body.items.map((item: any) => item.name)).toEqual(['a.txt', 'b.txt', 'c.txt'])
        race.expectAnsweredFirst('small upload')
        race.expectAnsweredFirst('listing')
        await expectUsableThenAbort(ann, bigReply.body.uploadId)
      } finally {
        remove()
      }
    },
    LONG,
  )

  it.skipIf(!available)(
    `a collector run started while ${MAX_CHUNKS} chunks are declared holds up nobody else`,
    async () => {
      const ann = await fresh()
      const { client: bob, folderId } = await userWithFolder()
      const race = new Race(server, ann)
      let collecting: Promise<any> | undefined
      let queuedBehindCollector = false
      let othersStarted!: (started: ReturnType<typeof others>) => void
      const othersAnswered = new Promise<Awaited<ReturnType<typeof others>>>((resolve) => {
        othersStarted = resolve
      })
      const { remove } = whenDeclaring(async () => {
        // Inside the declaring transaction, which holds the chunk guard's shared form on
        // PostgreSQL: the collector starts now. (On SQLite it cannot get a query in while this
        // transaction runs: it waits for the connection, and the declaration goes on.)
        collecting = race.track('collector', server.services.gc.run(), { other: false })
        if (backend !== 'postgres') {
          othersStarted(others(race, bob, folderId))
          return
        }
        // Once the collector has asked for the exclusive form, the small upload and the listing
        // start, and the declaration is held here until they are done, or until one of them
        // waits for the guard behind the collector (the convoy the collector must not cause).
        await collectorAtGuard(server)
        const started = others(race, bob, folderId)
        othersStarted(started)
        const settled = started.then(
          () => {},
          () => {},
        )
        queuedBehindCollector = await Promise.race([
          settled.then(() => false),
          uploadQueuedForGuard(server, settled).then(() => true),
        ])
      })
      try {
        const big = init(server, ann, declaration('huge.bin', MAX_CHUNKS, SMALL_CHUNK))
        const [bigReply, [small, listing]] = await Promise.all([
          race.track('big init', big, { other: false }),
          othersAnswered,
        ])
        const gc = await collecting
        console.info(
          `${backend}, large declaration and collector: answered in the order ${race.order.join(', ')}`,
        )
        expect(gc.errors).toEqual([])
        // Nobody asked for the guard's shared form and had to wait behind the collector.
        expect(queuedBehindCollector).toBe(false)
        expectAllNeeded(bigReply)
        expect(small).toMatchObject({ name: 'small.txt', version: 1 })
        expect(listing.status).toBe(200)
        race.expectAnsweredFirst('small upload')
        race.expectAnsweredFirst('listing')
        await expectUsableThenAbort(ann, bigReply.body.uploadId)
      } finally {
        remove()
      }
    },
    LONG,
  )
})

/** The advisory lock key of the chunk guard (src/adapters/sql/sql-chunk-repository.ts: "tess"). */
const CHUNK_GUARD_KEY = 0x74657373

/**
 * Waits until a connection of this server's database has asked for the chunk guard's
 * exclusive form (`pg_advisory_xact_lock(k)` or `pg_try_advisory_xact_lock(k)`, not the
 * `_shared` one): the collector is at its claim. pg_stat_activity keeps a connection's last
 * statement, so a try that already returned still counts.
 */
async function collectorAtGuard(server: TestServer): Promise<void> {
  const db = databaseOf(server)
  const pattern = `%advisory_xact_lock(${CHUNK_GUARD_KEY})%`
  for (let attempt = 0; ; attempt++) {
    const { rows } = await sql<{ n: number }>`
      select count(*)::int as n from pg_stat_activity
      where datname = current_database() and pid <> pg_backend_pid() and query like ${pattern}`.execute(db)
    if ((rows[0]?.n ?? 0) > 0) return
    if (attempt > 3000) throw new Error('the collector never asked for the chunk guard')
    await new Promise((resolve) => setTimeout(resolve, 5))
  }
}

/**
 * Resolves once a connection of this server's database waits for the chunk guard's shared form
 * (an upload queued behind the collector's exclusive request); stops looking once `until` settles.
 */
async function uploadQueuedForGuard(server: TestServer, until: Promise<void>): Promise<void> {
  const db = databaseOf(server)
  let over = false
  void until.then(() => {
    over = true
  })
  while (!over) {
    const { rows } = await sql<{ n: number }>`
      select count(*)::int as n from pg_locks l join pg_stat_activity a on a.pid = l.pid
      where a.datname = current_database() and l.locktype = 'advisory' and l.mode = 'ShareLock'
        and not l.granted`.execute(db)
    if ((rows[0]?.n ?? 0) > 0) return
    await new Promise((resolve) => setTimeout(resolve, 5))
  }
}

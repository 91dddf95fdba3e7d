// Device A of the sync benchmark: makes changes over HTTP and reports, for each, the id the
// server answered and two readings of the shared clock (process.hrtime, the machine's
// monotonic clock, the same in every process): just before the change's request was sent,
// and when its response had been read. For an upload the request is `complete` (init and the
// chunk PUT come before it, unmeasured: no change exists before `complete`).
//
//   mode "latency": one user (the first token), `warmup` + `count` changes one at a time;
//                   every `uploadEvery`-th is a 1 KiB upload, the others folder creations.
//   mode "fanout":  one folder creation per user for the first `count` tokens, `concurrency` in
//                   flight, after one each (as warm-up) for the `warmup` tokens that follow.
import { randomBytes } from 'node:crypto'
import { readFile } from 'node:fs/promises'
import { Agent } from 'undici'
import { forEachConcurrently, sha256Hex, Tessera } from '../lib/api.js'
import { clientMain } from '../lib/child.js'

interface Config {
  base: string
  tokensFile: string
  mode: 'latency' | 'fanout'
  count: number
  warmup: number
  uploadEvery: number
  concurrency: number
  tag: string
}

export interface Write {
  /** Index of the user (its token) the change was made for. */
  user: number
  kind: 'folder' | 'upload'
  /** The folder's or the file's id, as the response gave it. */
  id: string
  sentAt: number
  respondedAt: number
  warmup: boolean
}

export interface SyncWriterResult {
  writes: Write[]
  /** From the first request to the last response. */
  ms: number
}

const clockMs = (): number => Number(process.hrtime.bigint()) / 1e6

/** One change of either kind by one user, timed on the shared clock. */
class Writer {
  readonly #apis = new Map<number, Tessera>()

  constructor(
    readonly config: Config,
    readonly tokens: readonly string[],
    readonly dispatcher: Agent,
  ) {}

  api(user: number): Tessera {
    let client = this.#apis.get(user)
    if (!client) {
      const token = this.tokens[user]
      if (token === undefined) throw new Error(`no token for user ${user}`)
      client = new Tessera(this.config.base, token, this.dispatcher)
      this.#apis.set(user, client)
    }
    return client
  }

  async folder(user: number, n: number, warmup: boolean): Promise<Write> {
    const sentAt = clockMs()
    const created = await this.api(user).json<{ id: string }>(
      'POST',
      '/folders',
      { name: `sync ${this.config.tag} ${n}` },
      201,
    )
    return { user, kind: 'folder', id: created.id, sentAt, respondedAt: clockMs(), warmup }
  }

  /** A 1 KiB upload, timed from just before `complete`. */
  async upload(user: number, n: number, warmup: boolean): Promise<Write> {
    const bytes = randomBytes(1024)
    const hash = sha256Hex(bytes)
    const client = this.api(user)
    const session = await client.init({
      filename: `sync ${this.config.tag} ${n}.bin`,
      size: bytes.length,
      chunkHashes: [hash],
      folderId: null,
    })
    if (session.chunksNeeded.length !== 1) throw new Error('a fresh 1 KiB file should need its one chunk')
    await client.putChunk(session.uploadId, 0, hash, bytes.length, bytes)
    const sentAt = clockMs()
    const completed = await client.complete(session.uploadId)
    return { user, kind: 'upload', id: completed.file.id, sentAt, respondedAt: clockMs(), warmup }
  }
}

/** One user, one change at a time; every `uploadEvery`th an upload. */
async function latencyWrites(writer: Writer, writes: Write[]): Promise<void> {
  const { config } = writer
  for (let n = 0; n < config.warmup + config.count; n++) {
    const warmup = n < config.warmup
    const isUpload = config.uploadEvery > 0 && n % config.uploadEvery === config.uploadEvery - 1
    writes.push(await (isUpload ? writer.upload(0, n, warmup) : writer.folder(0, n, warmup)))
  }
}

/** One folder creation per user, `concurrency` in flight, after those of the warm-up users. */
async function fanoutWrites(writer: Writer, writes: Write[]): Promise<void> {
  const { config, tokens } = writer
  if (config.count + config.warmup > tokens.length)
    throw new Error(`${config.count} + ${config.warmup} changes for ${tokens.length} users`)
  await forEachConcurrently(config.warmup, config.concurrency, async (i) => {
    writes.push(await writer.folder(config.count + i, config.count + i, true))
  })
  await forEachConcurrently(config.count, config.concurrency, async (user) => {
    writes.push(await writer.folder(user, user, false))
  })
}

clientMain<Config, SyncWriterResult>(async (config) => {
  const tokens = JSON.parse(await readFile(config.tokensFile, 'utf8')) as string[]
  const dispatcher = new Agent({ connections: Math.max(1, config.concurrency) })
  const writer = new Writer(config, tokens, dispatcher)
  const writes: Write[] = []
  const start = clockMs()
  await (config.mode === 'latency' ? latencyWrites(writer, writes) : fanoutWrites(writer, writes))
  const ms = clockMs() - start
  await dispatcher.close()
  return { writes, ms }
})

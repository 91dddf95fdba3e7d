// Uploads one file to Tessera as a shell user would, one process per step: each chunk's bytes
// cut out with `dd` and hashed with `openssl dgst -sha256` (coreutils' sha256sum is about 3x
// slower here: it would measure itself, not the server) 8 at a time (`xargs -P 8`: hashing
// one process after the other would measure process start-up), init and complete with `curl`,
// and each chunk PUT as `dd … | curl --data-binary @-`, `concurrency` pipelines at a time. This
// script only starts the processes and times the whole upload.
import { spawn } from 'node:child_process'
import { stat } from 'node:fs/promises'
import { basename } from 'node:path'
import { clientMain } from '../lib/child.js'
import {
  API_PREFIX,
  assertFresh,
  inLanes,
  monotonicMicros,
  type Session,
  type WholeUploadConfig,
  type WholeUploadResult,
  wholeUploadResult,
} from '../lib/outside-client.js'
import { now } from '../lib/timing.js'

type Config = WholeUploadConfig

/** `sh -c script` with positional arguments; answers its stdout, throws on a non-zero exit. */
function sh(script: string, args: string[], stdin?: string): Promise<string> {
  return new Promise((resolve, reject) => {
    // No stdin pipe unless there is input: a pipeline that never reads it would EPIPE our write.
    const child = spawn('sh', ['-c', script, 'sh', ...args], {
      stdio: [stdin === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'],
    })
    let out = ''
    let err = ''
    child.stdout?.setEncoding('utf8').on('data', (text: string) => {
      out += text
    })
    child.stderr?.setEncoding('utf8').on('data', (text: string) => {
      err += text
    })
    child.stdin?.on('error', reject).end(stdin)
    child.once('error', reject)
    child.once('close', (code) =>
      code === 0 ? resolve(out) : reject(new Error(`sh -c '${script}' exit ${code}: ${err}${out}`)),
    )
  })
}

const HASH_PARALLEL = 8
const HASH_CHUNK = 'dd if="$1" bs="$2" skip="$3" count=1 status=none | openssl dgst -sha256 -r'
// curl prints the status; -f is not used so that a failure's body reaches the error.
const PUT_CHUNK =
  'dd if="$1" bs="$2" skip="$3" count=1 status=none | curl -sS -X PUT -o /dev/null -w "%{http_code}" ' +
  '-H "Authorization: Bearer $4" -H "Content-Type: application/octet-stream" -H "X-Chunk-Hash: $5" ' +
  '--data-binary @- "$6"'
const POST_JSON =
  'curl -sS -X POST -H "Authorization: Bearer $1" -H "Content-Type: application/json" --data-binary @- "$2"'

async function hashWithProcesses(config: Config, count: number): Promise<string[]> {
  const hashes: string[] = new Array(count)
  await inLanes(count, HASH_PARALLEL, async (index) => {
    const out = await sh(HASH_CHUNK, [config.file, String(config.chunkSize), String(index)])
    hashes[index] = out.trim().split(' ')[0]!
  })
  return hashes
}

async function putWithProcesses(config: Config, session: Session, hashes: string[]): Promise<void> {
  const url = (index: number) => `${config.base}${API_PREFIX}/upload/${session.uploadId}/chunk/${index}`
  await inLanes(session.chunksNeeded.length, config.concurrency, async (i) => {
    const index = session.chunksNeeded[i]!
    const args = [
      config.file,
      String(config.chunkSize),
      String(index),
      config.token,
      hashes[index]!,
      url(index),
    ]
    const status = await sh(PUT_CHUNK, args)
    if (status.trim() !== '200') throw new Error(`PUT chunk ${index}: HTTP ${status}`)
  })
}

async function postJson<T>(config: Config, route: string, body: unknown): Promise<T> {
  const out = await sh(POST_JSON, [config.token, `${config.base}${API_PREFIX}${route}`], JSON.stringify(body))
  try {
    return JSON.parse(out) as T
  } catch {
    throw new Error(`POST ${route}: ${out.slice(0, 300)}`)
  }
}

clientMain<Config, WholeUploadResult>(async (config) => {
  const { size } = await stat(config.file)
  const count = Math.ceil(size / config.chunkSize)
  const startMicros = monotonicMicros()
  const start = now()
  const hashes = await hashWithProcesses(config, count)
  const hashed = now()
  const filename = `${basename(config.file)}-${Date.now()}`
  const session = await postJson<Session>(config, '/upload/init', { filename, size, chunkHashes: hashes })
  if (!session.uploadId) throw new Error(`init: ${JSON.stringify(session).slice(0, 300)}`)
  assertFresh(session)
  const initiated = now()
  await putWithProcesses(config, session, hashes)
  const put = now()
  const done = await postJson<{ file?: { id: string; size: number } }>(
    config,
    `/upload/${session.uploadId}/complete`,
    {},
  )
  const end = now()
  if (done.file?.size !== size) throw new Error(`complete: ${JSON.stringify(done).slice(0, 300)}`)
  return wholeUploadResult(
    { start, hashed, initiated, put, end, startMicros },
    done.file,
    session.totalChunks,
  )
})

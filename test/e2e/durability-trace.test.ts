/**
 * The durability guarantees of the README ("Durability"), checked from the outside: the server
 * runs under strace, a client with plain `fetch` uploads, and the trace is replayed into a model
 * of what only the page cache holds (test/helpers/syscall-trace.ts). At the moment each chunk
 * answer (200) and each complete answer (201) starts out on the socket, nothing it promises may
 * be only in the page cache: the chunk copies, the names on the way to them, the SQLite database
 * and its WAL. And a chunk's row (the first write to the WAL after its copy was linked into
 * place) is written only once that copy is durable, so that after a power cut no row names bytes
 * that never reached the disk.
 *
 * SQLite only: on PostgreSQL the WAL and its fsync are the database server's (its durability
 * rests on `synchronous_commit` staying on, which no client can see in a trace of this process).
 * strace is needed (CI installs it, .ci/run); without it the suite is skipped outside CI.
 */
import { spawnSync } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { mkdtemp, readFile, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { ApiClient, hmac, sha256 } from '../helpers/api-client.js'
import { type ServerProcess, startServerProcess } from '../helpers/server-process.js'
import {
  fdPath,
  inTraceOrder,
  PageCacheModel,
  parseTrace,
  type Syscall,
  socketAnswer,
  TRACED_CALLS,
  type Volatile,
} from '../helpers/syscall-trace.js'

const WRITES = ['write', 'pwrite64', 'writev', 'pwritev', 'pwritev2']
const straceWorks = spawnSync('strace', ['-V']).status === 0
const KiB = 1024

const scratch = await mkdtemp(path.join(tmpdir(), 'tessera-durability-trace-'))
afterAll(() => rm(scratch, { recursive: true, force: true }))

/** What one answer promised, and what a power cut at that moment would have lost of it. */
interface Checked {
  answer: string
  volatile: Volatile[]
}

/** The uploads, and what the client saw: the chunk hashes of each completed file by its id. */
interface Scenario {
  chunkAnswers: number
  files: Map<string, string[]>
  newCopies: number
}

describe.skipIf(!straceWorks && !process.env.CI)('durability, seen in a syscall trace (sqlite)', () => {
  it('no 200 chunk or 201 complete answer goes out before what it promises is on stable storage', async () => {
    const dataDir = path.join(scratch, 'data')
    const traceFile = path.join(scratch, 'trace')
    const server = await startTracedServer(dataDir, traceFile)
    let scenario: Scenario
    try {
      scenario = await uploads(server)
    } finally {
      await server.stop()
    }
    const { answers, rows } = replay(parseTrace(await readFile(traceFile, 'utf8')), dataDir, scenario.files)

    // Every answer the client got is in the trace (the check below is about them all).
    const chunkAnswers = answers.filter((a) => a.answer.startsWith('chunk'))
    const completeAnswers = answers.filter((a) => a.answer.startsWith('complete'))
    expect(chunkAnswers).toHaveLength(scenario.chunkAnswers)
    expect(completeAnswers).toHaveLength(scenario.files.size)
    expect(rows).toHaveLength(scenario.newCopies)
    // Guarantees 1 and 2: nothing an answer promises is only in the page cache as it goes out.
    // Guarantee 3's order: each new copy was durable before its row went to the WAL.
    const atRisk = (checked: Checked[]) => checked.filter((c) => c.volatile.length > 0)
    expect({ answers: atRisk(answers), rows: atRisk(rows) }).toEqual({ answers: [], rows: [] })
  })
})

async function startTracedServer(dataDir: string, traceFile: string): Promise<ServerProcess> {
  if (!straceWorks) throw new Error('strace is missing (CI installs it: .ci/run)')
  // `?`: a call this architecture does not have (open, link... on arm64) is no error.
  const calls = TRACED_CALLS.map((name) => `?${name}`).join(',')
  const strace = ['strace', '-f', '--seccomp-bpf', '-tt', '-yy', '-s', '1024', '-o', traceFile]
  return startServerProcess(
    {
      // No upkeep or sweeps in the middle of the uploads (they would be ignored, but need not run).
      GC_INTERVAL_SECONDS: '0',
      UPLOAD_SWEEP_INTERVAL_SECONDS: '600',
      UPLOAD_MIN_CHUNK_BYTES: '1',
      // libuv may send file calls through io_uring, where strace cannot see them.
      UV_USE_IO_URING: '0',
    },
    { dataDir, wrapper: [...strace, '-e', `trace=${calls}`, '--'] },
  )
}

/**
 * One after the other: ann uploads a file of three new chunks (the first into an empty store),
 * then a second file sharing one of them; bob uploads the first file's bytes again, proving two
 * chunks and sending the third (deduplicated). Then a small file each in one request: ann's new,
 * bob's the bytes of a chunk ann stored.
 */
async function uploads(server: ServerProcess): Promise<Scenario> {
  const [ann, bob] = [await new ApiClient(server.api).register(), await new ApiClient(server.api).register()]
  const parts = [300, 200, 100, 150, 50].map((size) => randomBytes(size * KiB))
  const [p0, p1, p2, p3, p4] = parts as [Buffer, Buffer, Buffer, Buffer, Buffer]
  const files = new Map<string, string[]>()
  let chunkAnswers = 0
  const upload = async (client: ApiClient, name: string, chunks: Buffer[], prove: number[] = []) => {
    const init = await client.post('/upload/init', {
      filename: name,
      size: chunks.reduce((sum, c) => sum + c.length, 0),
      chunkHashes: chunks.map(sha256),
      chunkSizes: chunks.map((c) => c.length),
    })
    expect(init.status).toBe(201)
    const { uploadId, chunksNeeded, chunksToProve, proofNonce } = init.body
    const proofs = Object.fromEntries(prove.map((i) => [i, hmac(proofNonce, chunks[i] as Buffer)]))
    if (prove.length > 0)
      expect((await client.post(`/upload/${uploadId}/prove`, { proofs })).status).toBe(200)
    const send = [...chunksNeeded, ...chunksToProve.filter((i: number) => !prove.includes(i))]
    for (const index of send) {
      expect((await client.putChunk(uploadId, index, chunks[index] as Buffer)).status).toBe(200)
      chunkAnswers += 1
    }
    const done = await client.post(`/upload/${uploadId}/complete`)
    expect(done.status).toBe(201)
    files.set(done.body.file.id, chunks.map(sha256))
    expect(await client.downloadedHash(done.body.file.id)).toBe(sha256(Buffer.concat(chunks)))
    return init.body
  }
  /** The one-request upload (PUT /files/content): its 201 promises what a complete's does. */
  const direct = async (client: ApiClient, name: string, bytes: Buffer) => {
    const headers = { 'x-content-sha256': sha256(bytes) }
    const put = await client.request('PUT', `/files/content?name=${name}`, bytes, headers)
    expect(put.status).toBe(201)
    files.set(put.body.file.id, [sha256(bytes)])
  }
  expect(await upload(ann, 'one.bin', [p0, p1, p2])).toMatchObject({ chunksNeeded: [0, 1, 2] })
  expect(await upload(ann, 'two.bin', [p0, p3])).toMatchObject({ chunksNeeded: [1] })
  expect(await upload(bob, 'one.bin', [p0, p1, p2], [0, 1])).toMatchObject({ chunksToProve: [0, 1, 2] })
  await direct(ann, 'small.bin', p4)
  await direct(bob, 'two.bin', p3)
  return { chunkAnswers, files, newCopies: 5 }
}

/**
 * Replays the trace into the model and looks at it when each answer starts out (before the
 * call that writes it), and when each new copy's row is first written to the WAL.
 */
function replay(calls: Syscall[], dataDir: string, files: Map<string, string[]>) {
  const model = new PageCacheModel(dataDir)
  const chunksDir = path.join(dataDir, 'chunks')
  const wal = path.join(dataDir, 'tessera.db-wal')
  const database = [wal, path.join(dataDir, 'tessera.db')]
  const copiesOf = (hash: string) =>
    model.pathsNamed((name) => name.startsWith(`${hash}.`)).filter((p) => !p.startsWith(`${chunksDir}/tmp/`))
  const promised = (hashes: string[]) => {
    const copies = hashes.flatMap(copiesOf)
    const missing = hashes.filter((h) => copiesOf(h).length === 0).map((h) => ({ path: h, why: 'no copy' }))
    return [...missing, ...[...database, ...copies].flatMap((p) => model.volatile(p))]
  }
  const answers: Checked[] = []
  const rows: Checked[] = []
  let linked: string[] = []
  for (const { phase, call } of inTraceOrder(calls)) {
    if (phase === 'end') {
      model.end(call)
      const target = call.name.startsWith('link') && call.result === 0 ? call.args.split('"')[3] : undefined
      if (target?.startsWith(`${chunksDir}/`) && !target.startsWith(`${chunksDir}/tmp/`)) linked.push(target)
      continue
    }
    const answer = socketAnswer(call)
    const chunk = answer?.status === 200 ? /\{"index":\d+,"hash":"([0-9a-f]{64})"/.exec(answer.text) : null
    const file =
      answer?.status === 201 ? /"HTTP\/1\.1 201[^{]*\{"file":\{"id":"([^"]+)"/.exec(answer.text) : null
    if (chunk) answers.push({ answer: `chunk ${chunk[1]}`, volatile: promised([chunk[1] as string]) })
    const fileHashes = file ? files.get(file[1] as string) : undefined
    if (file)
      answers.push({ answer: `complete ${file[1]}`, volatile: promised(fileHashes ?? ['unknown file']) })
    if (WRITES.includes(call.name) && fdPath(call.args) === wal) {
      // A copy whose writes the trace did not show (io_uring) would look durable: that fails too.
      const unseen = (copy: string) =>
        model.writesTo(copy) > 0 ? [] : [{ path: copy, why: 'no write seen' }]
      const check = (copy: string) => ({
        answer: `row of ${copy}`,
        volatile: [...unseen(copy), ...model.volatile(copy)],
      })
      rows.push(...linked.map(check))
      linked = []
    }
    model.begin(call)
  }
  return { answers, rows }
}

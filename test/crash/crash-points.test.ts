/**
 * Kills a real process at every named crash point (src/support/crash-points.ts) and checks what
 * it leaves behind (issue 3): never a reference to missing bytes; the old state or the new one,
 * never a mixture; at most orphaned bytes of the chunk being written, which the collector later
 * reclaims; and afterwards a fully clean scrub with every live file byte-identical.
 *
 * The child (child.ts) opens the stores from a configuration as the server does and performs one
 * operation with TESSERA_CRASH_AT set; the state it starts from is prepared here, in this
 * process, with the stores closed again before the child starts. Afterwards the stores are
 * opened afresh here: nothing of the child's memory survives, as after a power cut.
 *
 * Time is virtual: every opening of the stores gets a clock that runs a fixed offset ahead of
 * the real one, a step of which (STEP) takes anything marked, claimed or written before it past
 * the collector's grace period (orphaned bytes are judged by their file's mtime, which is real
 * time).
 */
import { spawn } from 'node:child_process'
import { createHmac, randomBytes } from 'node:crypto'
import { cp, mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { afterAll, describe, expect, it } from 'vitest'
import { openServices } from '../../src/composition.js'
import { loadConfig } from '../../src/config.js'
import type { BlobKey } from '../../src/domain/blob-key.js'
import { sha256Hex } from '../../src/domain/hashes.js'
import type { User } from '../../src/domain/model.js'
import type { AppServices } from '../../src/services/app-services.js'
import type { CrashPoint } from '../../src/support/crash-points.js'
import { expectAppError } from '../helpers/app-error.js'
import { createTestDatabase, DATABASES, type DatabaseKind } from '../helpers/databases.js'
import { bodyOf, fingerprint } from '../helpers/streams.js'
import type { ChildOperation, ChildScenario } from './child.js'

const GRACE_MS = 3600_000
const UPLOAD_TTL_MS = 24 * 3600_000
/** Takes whatever was marked, claimed or written before it past the grace period. */
const STEP = GRACE_MS + 60_000

const repoRoot = fileURLToPath(new URL('../..', import.meta.url))
const CHILD = fileURLToPath(new URL('./child.ts', import.meta.url))

const scratch = await mkdtemp(path.join(tmpdir(), 'tessera-crash-'))
const cleanups: (() => Promise<void>)[] = []
afterAll(async () => {
  for (const cleanup of cleanups) await cleanup()
  await rm(scratch, { recursive: true, force: true })
})

// ---------------------------------------------------------------------------------------------
// Deployments, stores, the child

interface Deployment {
  db: DatabaseKind
  dataDir: string
  /** What loadConfig reads, here and in the child. */
  env: Record<string, string>
}

let deployments = 0

async function newDeployment(db: DatabaseKind): Promise<Deployment> {
  deployments += 1
  const dataDir = path.join(scratch, `${db}-${deployments}`)
  const env: Record<string, string> = {
    DATA_DIR: dataDir,
    GC_GRACE_SECONDS: String(GRACE_MS / 1000),
    UPLOAD_TTL_HOURS: String(UPLOAD_TTL_MS / 3600_000),
    // Files here are made of chunks of a few tens of KiB (declared with chunkSizes).
    UPLOAD_MIN_CHUNK_BYTES: '1',
    ARGON2_MEMORY_KIB: '1024',
    ARGON2_PASSES: '1',
  }
  if (db === 'postgres') {
    const database = await createTestDatabase()
    cleanups.push(database.drop)
    env.DATABASE_URL = database.url
  }
  return { db, dataDir, env }
}

/**
 * The same crashed state a second time (SQLite: the database file, its WAL and the chunks are all
 * under DATA_DIR, and no process has them open), so that two ways out of it can both be tried.
 */
async function copyDeployment(from: Deployment): Promise<Deployment> {
  if (from.db !== 'sqlite') throw new Error('only a SQLite deployment is copied whole')
  deployments += 1
  const dataDir = path.join(scratch, `${from.db}-${deployments}`)
  await cp(from.dataDir, dataDir, { recursive: true, preserveTimestamps: true })
  return { ...from, dataDir, env: { ...from.env, DATA_DIR: dataDir } }
}

interface Opened {
  s: AppServices
  /** How far ahead of the real time the services' clock runs; move it forward at will. */
  clock: { offsetMs: number }
}

/** Opens the stores as the server would (fresh state), runs `work`, closes them. */
async function withStores<T>(dep: Deployment, offsetMs: number, work: (opened: Opened) => Promise<T>) {
  const config = loadConfig(dep.env)
  const clock = { offsetMs }
  const opened = await openServices({ ...config, bus: { kind: 'local' } }, () => Date.now() + clock.offsetMs)
  try {
    return await work({ s: opened.services, clock })
  } finally {
    await opened.close()
  }
}

/** Runs `operation` in a child with TESSERA_CRASH_AT=crashAt; it must die of SIGKILL there. */
async function crashIn(
  dep: Deployment,
  crashAt: CrashPoint,
  operation: ChildOperation,
  clockOffsetMs: number,
): Promise<void> {
  const scenario: ChildScenario = { ...operation, env: dep.env, clockOffsetMs }
  const child = spawn(process.execPath, ['--import', 'tsx', CHILD, JSON.stringify(scenario)], {
    cwd: repoRoot,
    env: { ...process.env, TESSERA_CRASH_AT: crashAt },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  let output = ''
  child.stdout.setEncoding('utf8').on('data', (text: string) => {
    output += text
  })
  child.stderr.setEncoding('utf8').on('data', (text: string) => {
    output += text
  })
  const exit = await new Promise<{ code: number | null; signal: NodeJS.Signals | null }>(
    (resolve, reject) => {
      child.on('error', reject)
      child.on('close', (code, signal) => resolve({ code, signal }))
    },
  )
  // An exit of any other kind means the operation never reached the point (or failed first).
  expect(exit, `the child at ${crashAt}:\n${output}`).toEqual({ code: null, signal: 'SIGKILL' })
}

// ---------------------------------------------------------------------------------------------
// Users, uploads, downloads

const PASSWORD = 'correct horse battery staple'

/** A file as it must download: its id, current version and bytes. */
interface LiveFile {
  id: string
  version: number
  bytes: Buffer
}

/** Distinct random chunks of a few tens of KiB (declared with chunkSizes, so any size goes). */
const part = (): Buffer => randomBytes(30_000 + Math.floor(Math.random() * 20_000))
const hashes = (...parts: Buffer[]): string[] => parts.map((p) => sha256Hex(p)).sort()

function initUpload(s: AppServices, user: User, filename: string, parts: Buffer[], baseVersion?: number) {
  return s.uploads.init(user, {
    filename,
    size: parts.reduce((sum, p) => sum + p.length, 0),
    chunkHashes: parts.map((p) => sha256Hex(p)),
    chunkSizes: parts.map((p) => p.length),
    baseVersion,
  })
}

function putPart(s: AppServices, user: User, uploadId: string, index: number, bytes: Buffer) {
  const hash = sha256Hex(bytes)
  return s.uploads.putChunk({ user, uploadId, index, hash, contentLength: bytes.length, body: bodyOf(bytes) })
}

/** The whole upload flow; answers the file as it must download now. */
async function upload(
  s: AppServices,
  user: User,
  filename: string,
  parts: Buffer[],
  baseVersion?: number,
): Promise<LiveFile> {
  const session = await initUpload(s, user, filename, parts, baseVersion)
  for (const index of session.chunksNeeded) await putPart(s, user, session.uploadId, index, parts[index]!)
  if (session.chunksToProve.length > 0) {
    const key = Buffer.from(session.proofNonce, 'hex')
    const proofs = Object.fromEntries(
      session.chunksToProve.map((i) => [
        String(i),
        createHmac('sha256', key).update(parts[i]!).digest('hex'),
      ]),
    )
    await s.uploads.prove(user, session.uploadId, proofs)
  }
  const { file } = await s.uploads.complete(user, session.uploadId)
  return { id: file.id, version: file.currentVersion!, bytes: Buffer.concat(parts) }
}

/** The file's bytes as a download reads them: every chunk checked against its hash on the way. */
async function download(s: AppServices, user: User, fileId: string, version?: number): Promise<Buffer> {
  const plan = await s.files.planDownload(user, fileId, version)
  if (plan.version.size === 0) return Buffer.alloc(0)
  const pieces: Buffer[] = []
  for await (const piece of await plan.open(0, plan.version.size - 1)) pieces.push(piece)
  return Buffer.concat(pieces)
}

/** Each file is live at its version and downloads byte-identical. */
async function expectLive(s: AppServices, user: User, files: LiveFile[]): Promise<void> {
  for (const file of files) {
    const node = await s.files.get(user, file.id)
    expect({ version: node.currentVersion, size: node.size }).toEqual({
      version: file.version,
      size: file.bytes.length,
    })
    expect(fingerprint(await download(s, user, file.id))).toEqual(fingerprint(file.bytes))
  }
}

const usedBytes = async (s: AppServices, user: User) => (await s.meta.users.findById(user.id))?.usedBytes

/** The hashes of the copies the blob store holds, sorted: a hash with two copies is there twice. */
async function storedHashes(s: AppServices): Promise<string[]> {
  const found: string[] = []
  for await (const blob of s.blobs.list()) found.push(blob.hash)
  return found.sort()
}

/** The copies of this hash the blob store holds, of any generation. */
async function copiesOf(s: AppServices, hash: string): Promise<BlobKey[]> {
  const found: BlobKey[] = []
  for await (const { hash: stored, generation } of s.blobs.list()) {
    if (stored === hash) found.push({ hash, generation })
  }
  return found
}

/**
 * A full scrub finds nothing wrong except exactly `unknown` (the hashes of orphaned copies); with
 * none, it is clean.
 */
async function expectScrub(s: AppServices, unknown: string[] = []): Promise<void> {
  const report = await s.scrubber.run()
  expect({
    corrupt: report.corrupt,
    missing: report.missing,
    readErrors: report.readErrors,
    markedDamaged: report.markedDamaged,
    damaged: report.damaged,
    danglingReferences: report.danglingReferences,
    sizeMismatches: report.sizeMismatches,
    refCountMismatches: report.refCountMismatches,
    unknown: report.unknown.map((copy) => copy.hash).sort(),
  }).toEqual({
    corrupt: [],
    missing: [],
    readErrors: [],
    markedDamaged: [],
    damaged: 0,
    danglingReferences: [],
    sizeMismatches: [],
    refCountMismatches: [],
    unknown: [...unknown].sort(),
  })
  expect(report.clean).toBe(unknown.length === 0)
}

/** Every scenario starts with a user who has one file, keep.bin, which must survive everything. */
async function baseline(s: AppServices): Promise<{ user: User; keep: LiveFile; a: Buffer; b: Buffer }> {
  const { user } = await s.auth.register({ email: 'crash@example.com', password: PASSWORD })
  const [a, b] = [part(), part()]
  return { user, keep: await upload(s, user, 'keep.bin', [a, b]), a, b }
}

// ---------------------------------------------------------------------------------------------
// Chunk write path: PUT of the second chunk of an open session

const CHUNK_POINTS: ReadonlyArray<{ point: CrashPoint; bytesStay: boolean; rowWritten: boolean }> = [
  { point: 'blob.put.after-temp-write', bytesStay: false, rowWritten: false },
  { point: 'blob.put.after-fsync', bytesStay: false, rowWritten: false },
  { point: 'blob.put.after-link', bytesStay: true, rowWritten: false },
  { point: 'blob.put.after-dir-fsync', bytesStay: true, rowWritten: false },
  { point: 'chunk.put.before-row', bytesStay: true, rowWritten: false },
  { point: 'chunk.put.after-row', bytesStay: true, rowWritten: true },
]

describe('killed in the chunk write path (sqlite)', () => {
  it.each(CHUNK_POINTS)('at $point', async ({ point, bytesStay, rowWritten }) => {
    const dep = await newDeployment('sqlite')
    const [c, d] = [part(), part()]
    const hashD = sha256Hex(d)
    const chunkFile = `${dep.dataDir}.chunk`
    await writeFile(chunkFile, d)
    const { user, keep, a, b, uploadId } = await withStores(dep, 0, async ({ s }) => {
      const base = await baseline(s)
      const session = await initUpload(s, base.user, 'new.bin', [c, d])
      await putPart(s, base.user, session.uploadId, 0, c)
      return { ...base, uploadId: session.uploadId }
    })

    await crashIn(
      dep,
      point,
      { op: 'put-chunk', userId: user.id, uploadId, index: 1, hash: hashD, size: d.length, file: chunkFile },
      0,
    )
    // The same crashed state twice: the client comes back and finishes, or it never does.
    const abandoned = await copyDeployment(dep)
    const orphans = bytesStay && !rowWritten ? [hashD] : []

    await withStores(dep, STEP, async ({ s }) => {
      await expectScrub(s, orphans)
      const row = await s.meta.chunks.find(hashD)
      expect(row && { state: row.state, refCount: row.refCount }).toEqual(
        rowWritten ? { state: 'live', refCount: 0 } : null,
      )
      // Its copy under the generation the put chose: the row's when the row was written.
      const copies = await copiesOf(s, hashD)
      expect(copies).toHaveLength(bytesStay ? 1 : 0)
      if (rowWritten) expect(copies).toEqual([{ hash: hashD, generation: row?.generation }])
      // The session is intact and asks for exactly what is not recorded.
      expect((await s.uploads.check(user, uploadId)).chunksNeeded).toEqual(rowWritten ? [] : [1])
      expect(await s.meta.nodes.findLiveChild(user.rootFolderId, 'new.bin')).toBeNull()
      expect(await usedBytes(s, user)).toBe(keep.bytes.length)
      await expectLive(s, user, [keep])

      if (!rowWritten) await putPart(s, user, uploadId, 1, d)
      const { file } = await s.uploads.complete(user, uploadId)
      const created: LiveFile = { id: file.id, version: 1, bytes: Buffer.concat([c, d]) }
      expect(await usedBytes(s, user)).toBe(keep.bytes.length + created.bytes.length)

      // The PUT again wrote a copy of its own: the crashed one's, if any, is an orphan beside it,
      // whose hash no session names any more.
      expect(await s.gc.run({ orphans: true })).toMatchObject({
        swept: 0,
        orphans: orphans.length,
        errors: [],
      })
      await expectScrub(s)
      await expectLive(s, user, [keep, created])
      expect(await storedHashes(s)).toEqual(hashes(a, b, c, d))
    })

    // Abandoned: the session expires; its chunks, recorded or orphaned, are reclaimed. (So does
    // the record of keep.bin's completed session, kept until then to answer a retried complete.)
    // No version ever named them: they go in the run that ends the session, without a grace.
    await withStores(abandoned, UPLOAD_TTL_MS + STEP, async ({ s, clock }) => {
      expect(await s.gc.run({ orphans: true })).toMatchObject({
        expiredUploads: 2,
        swept: rowWritten ? 2 : 1,
        orphans: orphans.length,
        errors: [],
      })
      clock.offsetMs += STEP
      expect(await s.gc.run({ orphans: true })).toMatchObject({
        swept: 0,
        orphans: 0,
        errors: [],
      })
      await expectScrub(s)
      await expectLive(s, user, [keep])
      expect(await storedHashes(s)).toEqual(hashes(a, b))
      expect(await usedBytes(s, user)).toBe(keep.bytes.length)
    })
  })
})

// ---------------------------------------------------------------------------------------------
// Commit path and sweep path, on every database

describe.each(DATABASES)('$name', ({ name: db, available }) => {
  describe.skipIf(!available)('killed in the commit path', () => {
    it.each([
      { point: 'upload.complete.before-commit' as const, committed: false },
      { point: 'upload.complete.after-commit' as const, committed: true },
    ])('at $point, while completing version 2 of a file', async ({ point, committed }) => {
      const dep = await newDeployment(db)
      const [e, f, g] = [part(), part(), part()]
      const { user, keep, a, b, v1, uploadId } = await withStores(dep, 0, async ({ s }) => {
        const base = await baseline(s)
        const v1 = await upload(s, base.user, 'doc.bin', [e, f])
        // Version 2 shares its first chunk with version 1: only the second is needed.
        const session = await initUpload(s, base.user, 'doc.bin', [e, g], 1)
        expect(session.chunksNeeded).toEqual([1])
        await putPart(s, base.user, session.uploadId, 1, g)
        return { ...base, v1, uploadId: session.uploadId }
      })
      const v2: LiveFile = { id: v1.id, version: 2, bytes: Buffer.concat([e, g]) }

      await crashIn(dep, point, { op: 'complete', userId: user.id, uploadId }, 0)

      await withStores(dep, 0, async ({ s, clock }) => {
        await expectScrub(s)
        await expectLive(s, user, [keep, committed ? v2 : v1])
        expect((await s.meta.versions.list(v1.id)).map((v) => v.version)).toEqual(committed ? [2, 1] : [1])
        expect(await usedBytes(s, user)).toBe(keep.bytes.length + (committed ? v2 : v1).bytes.length)
        expect((await s.meta.chunks.find(sha256Hex(g)))?.refCount).toBe(committed ? 1 : 0)

        // The client's retry: completes the intact session, or (its work done before the crash)
        // is answered with what that complete made, never a second version.
        const { file, conflict } = await s.uploads.complete(user, uploadId)
        expect({ id: file.id, version: file.currentVersion, conflict }).toEqual({
          id: v1.id,
          version: 2,
          conflict: false,
        })
        expect((await s.meta.versions.list(v1.id)).map((v) => v.version)).toEqual([2, 1])
        expect(await usedBytes(s, user)).toBe(keep.bytes.length + v2.bytes.length)

        clock.offsetMs += STEP
        expect(await s.gc.run({ orphans: true })).toMatchObject({ swept: 0, orphans: 0, errors: [] })
        await expectScrub(s)
        await expectLive(s, user, [keep, v2])
        expect(fingerprint(await download(s, user, v1.id, 1))).toEqual(fingerprint(v1.bytes))
        expect(await storedHashes(s)).toEqual(hashes(a, b, e, f, g))
      })
    })

    it('at trash.purge.after-commit, while purging a trashed file', async () => {
      const dep = await newDeployment(db)
      const h = part()
      const { user, keep, a, b, trashed } = await withStores(dep, 0, async ({ s }) => {
        const base = await baseline(s)
        // Shares a chunk with keep.bin, which must outlive the purge.
        const trashed = await upload(s, base.user, 'trash.bin', [base.a, h])
        await s.files.delete(base.user, trashed.id)
        expect(await usedBytes(s, base.user)).toBe(base.keep.bytes.length + trashed.bytes.length)
        return { ...base, trashed }
      })

      await crashIn(dep, 'trash.purge.after-commit', { op: 'purge', userId: user.id, nodeId: trashed.id }, 0)

      await withStores(dep, 0, async ({ s, clock }) => {
        await expectScrub(s)
        // Purged whole: node, versions, references and quota together.
        expect(await s.meta.nodes.findAnyState(trashed.id)).toBeNull()
        expect(await s.meta.versions.list(trashed.id)).toEqual([])
        expect(await s.meta.nodes.listTrash(user.id, { limit: 10 })).toEqual([])
        expect(await usedBytes(s, user)).toBe(keep.bytes.length)
        expect((await s.meta.chunks.find(sha256Hex(h)))?.refCount).toBe(0)
        expect((await s.meta.chunks.find(sha256Hex(a)))?.refCount).toBe(1)
        await expectLive(s, user, [keep])
        await expectAppError(s.trash.purge(user, trashed.id), 'NOT_FOUND')

        clock.offsetMs += STEP
        expect(await s.gc.run({ orphans: true })).toMatchObject({ swept: 0, marked: 1, errors: [] })
        clock.offsetMs += STEP
        expect(await s.gc.run({ orphans: true })).toMatchObject({ swept: 1, orphans: 0, errors: [] })
        await expectScrub(s)
        await expectLive(s, user, [keep])
        expect(await storedHashes(s)).toEqual(hashes(a, b))
      })
    })
  })

  describe.skipIf(!available)('killed in the sweep path', () => {
    it.each([
      { point: 'gc.sweep.after-claim' as const, rows: 'deleting', bytesStay: true },
      { point: 'gc.sweep.after-blob-delete' as const, rows: 'deleting', bytesStay: false },
      { point: 'gc.sweep.after-row-delete' as const, rows: null, bytesStay: false },
    ])('at $point, while collecting a purged file', async ({ point, rows, bytesStay }) => {
      const dep = await newDeployment(db)
      const [j, k] = [part(), part()]
      const garbage = [sha256Hex(j), sha256Hex(k)]
      const { user, keep, a, b } = await withStores(dep, 0, async ({ s }) => {
        const base = await baseline(s)
        const doomed = await upload(s, base.user, 'garbage.bin', [base.a, j, k])
        await s.files.delete(base.user, doomed.id)
        await s.trash.purge(base.user, doomed.id)
        expect(await s.gc.run()).toMatchObject({ swept: 0, marked: 2, errors: [] })
        return base
      })

      // One grace period after the mark: the child claims both chunks in one batch.
      await crashIn(dep, point, { op: 'gc', orphans: false }, STEP)

      await withStores(dep, 2 * STEP, async ({ s }) => {
        for (const hash of garbage) {
          expect((await s.meta.chunks.find(hash))?.state ?? null, `row of ${hash}`).toBe(rows)
          // The claimed copy, until the collector deleted it.
          const row = await s.meta.chunks.find(hash)
          expect(await copiesOf(s, hash), `bytes of ${hash}`).toEqual(
            bytesStay ? [{ hash, generation: row?.generation }] : [],
          )
        }
        expect(await s.meta.chunks.find(sha256Hex(a))).toMatchObject({ state: 'live', refCount: 1 })
        await expectScrub(s)
        await expectLive(s, user, [keep])

        // The next run finishes the claims the dead one left, and counts them as swept.
        expect(await s.gc.run({ orphans: true })).toMatchObject({
          resumed: rows === null ? 0 : 2,
          swept: rows === null ? 0 : 2,
          orphans: 0,
          errors: [],
        })
        for (const hash of garbage) expect(await s.meta.chunks.find(hash)).toBeNull()
        await expectScrub(s)
        await expectLive(s, user, [keep])
        expect(await storedHashes(s)).toEqual(hashes(a, b))
      })
    })
  })
})

/**
 * Guarantee 3 of the README ("Durability"): after a power loss, chunk bytes that were never made
 * durable are never trusted: no row names them, no other user's upload is deduplicated against
 * them, no version references them (so nothing serves them), and `check` asks for them again.
 *
 * The upload services run over the disk blob store on PowerLossFileSystem (test/helpers/
 * power-loss-fs.ts: at a power cut, whatever was not fsynced is gone, names included), and a
 * chunk PUT is cut off after each number of file system calls in turn: while its bytes are
 * written, before their fsync, after the link and before the directory's fsync, and so on. The
 * metadata store keeps what it committed (SQLite's own commit durability is checked in
 * test/e2e/durability-trace.test.ts); the services then restart over what the disk kept.
 *
 * disk-blob-store.power-loss.test.ts checks the blob store alone at every cut (a whole chunk or
 * none of it, never a partial one); this file checks what the services make of the leftovers.
 */
import { randomBytes } from 'node:crypto'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { expectAppError } from '../../../test/helpers/app-error.js'
import { openTestMetadataStore } from '../../../test/helpers/databases.js'
import { PowerLossFileSystem } from '../../../test/helpers/power-loss-fs.js'
import { testConfig } from '../../../test/helpers/service-fixture.js'
import { bodyOf, fingerprint, readAll } from '../../../test/helpers/streams.js'
import { DiskBlobStore } from '../../adapters/disk/disk-blob-store.js'
import { LocalEventBus } from '../../adapters/local-bus/local-event-bus.js'
import { buildServices } from '../../composition.js'
import { sha256Hex } from '../../domain/hashes.js'
import type { User } from '../../domain/model.js'
import type { MetadataStore } from '../../ports/metadata-store.js'
import type { AppServices } from '../app-services.js'

const scratch = await mkdtemp(join(tmpdir(), 'tessera-receipt-power-loss-'))
afterAll(() => rm(scratch, { recursive: true, force: true }))

const KiB = 1024

/** The services as a (re)started server builds them, on `blobs`, with a fixed clock. */
function servicesOn(meta: MetadataStore, blobs: DiskBlobStore): AppServices {
  const bus = new LocalEventBus({ nodeId: 'power-loss-test' })
  return buildServices(
    { meta, blobs, bus },
    () => Date.UTC(2030, 0, 1),
    testConfig({ SESSION_CACHE_MS: '0' }),
  )
}

const declare = (s: AppServices, user: User, name: string, parts: Buffer[]) =>
  s.uploads.init(user, {
    filename: name,
    size: parts.reduce((sum, p) => sum + p.length, 0),
    chunkHashes: parts.map((p) => sha256Hex(p)),
    chunkSizes: parts.map((p) => p.length),
  })

const putPart = (s: AppServices, user: User, uploadId: string, index: number, bytes: Buffer) =>
  s.uploads.putChunk({
    user,
    uploadId,
    index,
    hash: sha256Hex(bytes),
    contentLength: bytes.length,
    body: bodyOf(bytes),
  })

/** What one cut left behind, after the power came back. */
interface Outcome {
  calls: number
  /** The PUT answered before the power went. */
  acknowledged: boolean
  /** A row names the chunk. */
  recorded: boolean
  /** A copy of the chunk's bytes is on disk (named by the row or not). */
  copyOnDisk: boolean
}

/**
 * ann has sent chunk 0 of a two-chunk file; the power goes after `calls` file system calls of
 * her PUT of chunk 1. Then, restarted: what the services trust of chunk 1, and that the upload
 * still completes once she sends what `check` asks for.
 */
async function cutPutOfSecondChunk(calls: number): Promise<Outcome> {
  const root = join(scratch, `cut-${calls}`)
  const shim = await PowerLossFileSystem.over(root)
  const db = await openTestMetadataStore('sqlite', { sqliteInMemory: true })
  const parts = [randomBytes(20 * KiB), randomBytes(30 * KiB)] as const
  const hash = sha256Hex(parts[1])
  const before = servicesOn(db.store, new DiskBlobStore({ root, fileSystem: shim, staleTempAgeMs: 5 }))
  try {
    const register = (name: string) =>
      before.auth.register({ email: `${name}@example.com`, password: 'power loss password' })
    const [{ user: ann }, { user: bob }] = [await register('ann'), await register('bob')]
    const session = await declare(before, ann, 'cut.bin', [...parts])
    await putPart(before, ann, session.uploadId, 0, parts[0])

    const cut = shim.cutPowerAfter(calls)
    const put = putPart(before, ann, session.uploadId, 1, parts[1])
    const acknowledged = await Promise.race([cut.then(() => false), put.then(() => true)])
    await shim.powerLoss()

    const after = servicesOn(db.store, new DiskBlobStore({ root, staleTempAgeMs: 5 }))
    try {
      const row = await db.store.chunks.find(hash)
      const copies: string[] = []
      for await (const blob of after.blobs.list()) if (blob.hash === hash) copies.push(blob.generation)
      const outcome = { calls, acknowledged, recorded: row !== null, copyOnDisk: copies.length > 0 }
      if (row !== null) {
        // A row names only bytes that survived whole (guarantees 1 and 3).
        const stored = await after.blobs.get(row)
        expect(stored && fingerprint(await readAll(stored)), `cut after ${calls}`).toEqual(
          fingerprint(parts[1]),
        )
      } else {
        await expectUntrusted(after, { ann, bob }, session.uploadId, parts[1], calls)
        await putPart(after, ann, session.uploadId, 1, parts[1])
      }
      const { file } = await after.uploads.complete(ann, session.uploadId)
      const plan = await after.files.planDownload(ann, file.id)
      const pieces: Buffer[] = []
      for await (const piece of await plan.open(0, plan.version.size - 1)) pieces.push(piece)
      expect(fingerprint(Buffer.concat(pieces))).toEqual(fingerprint(Buffer.concat([...parts])))
      return outcome
    } finally {
      await after.hashers.close()
    }
  } finally {
    await before.hashers.close()
    await db.cleanup()
  }
}

/** Chunk bytes no row names: asked for again, never deduplicated against, never in a version. */
async function expectUntrusted(
  s: AppServices,
  { ann, bob }: { ann: User; bob: User },
  uploadId: string,
  bytes: Buffer,
  calls: number,
): Promise<void> {
  const because = `cut after ${calls} calls`
  expect((await s.uploads.check(ann, uploadId)).chunksNeeded, because).toEqual([1])
  const missing = await expectAppError(s.uploads.complete(ann, uploadId), 'CHUNKS_MISSING')
  expect(missing.details, because).toMatchObject({ missing: [1] })
  // Another user declaring the same bytes must send them: nothing to prove, nothing existing.
  const bobs = await declare(s, bob, 'same.bin', [bytes])
  expect(bobs, because).toMatchObject({ chunksNeeded: [0], chunksToProve: [], chunksExisting: 0 })
  await expectAppError(s.uploads.complete(bob, bobs.uploadId), 'CHUNKS_MISSING')
}

describe('a chunk PUT cut off by a power loss, then the services restarted', () => {
  it('leaves bytes no row names, which nothing trusts until they are sent again', async () => {
    const outcomes: Outcome[] = []
    for (let calls = 0; ; calls += 1) {
      const outcome = await cutPutOfSecondChunk(calls)
      outcomes.push(outcome)
      if (outcome.acknowledged) break
    }
    // An acknowledged PUT is recorded (and its bytes whole, checked above).
    expect(outcomes.filter((o) => o.acknowledged && !o.recorded)).toEqual([])
    // The sweep went through the cases that matter: bytes lost with their name, and bytes that
    // survived (written, fsynced, linked, directory fsynced) without a row: an orphan, untrusted.
    expect(outcomes.some((o) => !o.recorded && !o.copyOnDisk)).toBe(true)
    expect(outcomes.some((o) => !o.recorded && o.copyOnDisk)).toBe(true)
    expect(outcomes.length).toBeGreaterThan(8)
  })
})

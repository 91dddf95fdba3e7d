import { randomBytes } from 'node:crypto'
import { chmod, mkdir, readFile, rm, stat, truncate, unlink, utimes, writeFile } from 'node:fs/promises'
import path from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { type BlobKey, blobName, LEGACY_GENERATION, newGeneration } from '../../src/domain/blob-key.js'
import type { BlobStore } from '../../src/ports/blob-store.js'
import { ApiClient, sha256 } from '../helpers/api-client.js'
import { DATABASES } from '../helpers/databases.js'
import { seededRandom } from '../helpers/random.js'
import { startTestServer, type TestServer } from '../helpers/test-server.js'
import {
  concat,
  copiesOnDisk,
  copyPath,
  expectCollected,
  expectScrubClean,
  expectStored,
  fileExists,
  GRACE_MS,
  gcAfterGrace,
  PAST_GRACE_MS,
  pick,
  randomParts,
  rowCopyPath,
  uploadParts,
} from './gc-helpers.js'

/** Fixed, so that a failure names the same chunks when it is run again. */
const SEED = 0x5c4b
const sorted = (hashes: Iterable<string>): string[] => [...hashes].sort()
const sortedCopies = (copies: readonly BlobKey[]): string[] => copies.map(blobName).sort()

describe.each(DATABASES)('scrub detection on %s', ({ name: backend, available }) => {
  let server: TestServer | undefined
  afterEach(async () => {
    await server?.stop()
    server = undefined
  })

  /** A fresh server (GC off: only the tests run it) with `files` files of `chunks` small chunks each. */
  async function storeWithFiles(files: number, chunks: number) {
    const started = await startTestServer(backend, { GC_INTERVAL_SECONDS: '0' })
    server = started
    const ann = await new ApiClient(started.api).register()
    const stored: { id: string; parts: Buffer[] }[] = []
    for (let f = 0; f < files; f++) {
      const parts = randomParts(chunks, 512)
      stored.push({ id: (await uploadParts(ann, `file-${f}.bin`, parts)).id, parts })
    }
    const hashes = stored.flatMap((file) => file.parts.map(sha256))
    expect(new Set(hashes).size).toBe(files * chunks)
    return { server: started, ann, stored, hashes }
  }

  it.skipIf(!available)(
    'reports exactly the flipped, truncated and deleted chunks, and deletes nothing',
    async () => {
      const { server, ann, stored, hashes } = await storeWithFiles(6, 10)
      await expectScrubClean(server)
      const random = seededRandom(SEED)
      const chosen = pick(hashes, 15, random)
      const flipped = chosen.slice(0, 5)
      const truncated = chosen.slice(5, 10)
      const deleted = chosen.slice(10, 15)
      // The copy each chunk's row names: the one a download or scrub reads.
      const copies = new Map<string, string>()
      for (const hash of chosen) copies.set(hash, await rowCopyPath(server, hash))
      const copyOf = (hash: string) => copies.get(hash) as string
      const damaged = new Map<string, Buffer>()
      for (const hash of flipped) {
        const bytes = await readFile(copyOf(hash))
        const at = Math.floor(random() * bytes.length)
        bytes[at] = (bytes[at] as number) ^ (1 << Math.floor(random() * 8))
        await writeFile(copyOf(hash), bytes)
        damaged.set(hash, bytes)
      }
      for (const hash of truncated) {
        const file = copyOf(hash)
        const bytes = await readFile(file)
        const length = Math.floor(random() * bytes.length)
        await truncate(file, length)
        damaged.set(hash, bytes.subarray(0, length))
      }
      for (const hash of deleted) await unlink(copyOf(hash))

      for (const pass of ['first', 'second']) {
        const report = await server.services.scrubber.run()
        expect(sorted(report.corrupt.map((c) => c.hash)), pass).toEqual(sorted([...flipped, ...truncated]))
        expect(sorted(report.missing), pass).toEqual(sorted(deleted))
        // The first pass marks them all damaged; the second finds them marked already.
        expect(sorted(report.markedDamaged), pass).toEqual(pass === 'first' ? sorted(chosen) : [])
        expect(report.damaged, pass).toBe(chosen.length)
        expect(report.readErrors).toEqual([])
        expect(report.unknown).toEqual([])
        expect(report.danglingReferences).toEqual([])
        expect(report.sizeMismatches).toEqual([])
        expect(report.refCountMismatches).toEqual([])
        expect(report.clean).toBe(false)
        expect(report.checked).toBe(hashes.length - deleted.length)
        for (const corrupt of report.corrupt) {
          const bytes = damaged.get(corrupt.hash) as Buffer
          expect(corrupt).toMatchObject({ actual: sha256(bytes), size: bytes.length })
          expect(corrupt.actual).not.toBe(corrupt.hash)
          expect(corrupt.expectedSize).toBe((await server.services.meta.chunks.find(corrupt.hash))?.size)
        }
      }

      // Nothing was removed or repaired: the damaged files are still there as they were, and their
      // rows still name them; only the damaged ones are marked so.
      for (const [hash, bytes] of damaged) {
        expect(await copiesOnDisk(server.dataDir, hash)).toEqual([copyOf(hash)])
        expect((await readFile(copyOf(hash))).equals(bytes), hash).toBe(true)
      }
      for (const hash of deleted) expect(await copiesOnDisk(server.dataDir, hash)).toEqual([])
      for (const hash of hashes) {
        expect(await server.services.meta.chunks.find(hash)).toMatchObject({
          state: 'live',
          damaged: chosen.includes(hash),
        })
        if (copies.has(hash)) expect(await rowCopyPath(server, hash)).toBe(copyOf(hash))
      }
      // A file holding a damaged chunk answers so, before a byte of it goes out.
      const hurt = stored.find((file) => file.parts.some((part) => chosen.includes(sha256(part))))!
      const refused = await ann.download(hurt.id)
      expect(refused.status).toBe(500)
      expect(refused.body).toMatchObject({ error: { code: 'CONTENT_DAMAGED' } })
      // Nor does the collector touch referenced chunks, damaged or not.
      await gcAfterGrace(server)
      await gcAfterGrace(server)
      await expectStored(
        server,
        hashes.filter((hash) => !deleted.includes(hash)),
      )
      const intact = stored.find((file) => file.parts.every((part) => !chosen.includes(sha256(part))))
      if (intact) expect((await ann.download(intact.id)).body.equals(concat(intact.parts))).toBe(true)

      // The next upload of the bytes repairs them: a new copy each, the damaged one gone.
      const repairs = stored.filter((file) => file.parts.some((part) => chosen.includes(sha256(part))))
      for (const [i, file] of repairs.entries()) await uploadParts(ann, `repair-${i}.bin`, file.parts)
      for (const hash of chosen) {
        const row = await server.services.meta.chunks.find(hash)
        expect(row, hash).toMatchObject({ state: 'live', damaged: false })
        expect(await copiesOnDisk(server.dataDir, hash)).toEqual([await rowCopyPath(server, hash)])
      }
      for (const file of stored) {
        const reply = await ann.download(file.id)
        expect(reply.status).toBe(200)
        expect(reply.body.equals(concat(file.parts))).toBe(true)
      }
      await expectScrubClean(server)
    },
  )

  it.skipIf(!available)(
    'bytes with no row are unknown until gc --orphans reclaims them after the grace period',
    async () => {
      const { server, hashes } = await storeWithFiles(1, 4)
      const place = async (copy: BlobKey, bytes: Buffer, mtime: Date) => {
        const file = copyPath(server.dataDir, copy)
        await mkdir(path.dirname(file), { recursive: true })
        await writeFile(file, bytes)
        await utimes(file, mtime, mtime)
        return copy
      }
      const long = new Date(Date.now() - 2 * GRACE_MS)
      // As a crash between writing the bytes and recording them leaves them: one from before
      // generations (a bare hash), one since.
      const oldBytes = randomBytes(900)
      const old = await place({ hash: sha256(oldBytes), generation: LEGACY_GENERATION }, oldBytes, long)
      const youngBytes = randomBytes(901)
      const young = await place(
        { hash: sha256(youngBytes), generation: newGeneration() },
        youngBytes,
        new Date(),
      )
      // A second copy of a stored chunk that no row names: the loser of two uploads of it, say.
      const kept = hashes[1] as string
      const keptCopy = await rowCopyPath(server, kept)
      const stray = await place({ hash: kept, generation: newGeneration() }, await readFile(keptCopy), long)

      const report = await server.services.scrubber.run()
      expect(sortedCopies(report.unknown)).toEqual(sortedCopies([old, young, stray]))
      expect(report.clean).toBe(false)
      expect(report.corrupt).toEqual([])
      expect(report.missing).toEqual([])
      expect(report.markedDamaged).toEqual([])
      // With the collector's grace, an upload in progress is not a problem yet.
      const settled = (await server.services.scrubber.run({ unknownGraceMs: GRACE_MS })).unknown
      expect(sortedCopies(settled)).toEqual(sortedCopies([old, stray]))
      expect(await fileExists(copyPath(server.dataDir, old))).toBe(true)

      // A plain run does not walk the store; nor does one that finds the orphans too young.
      await server.services.gc.run()
      expect(await fileExists(copyPath(server.dataDir, old))).toBe(true)
      const dry = await server.services.gc.run({ orphans: true, dryRun: true })
      expect(dry.orphans).toBe(2)
      expect(await fileExists(copyPath(server.dataDir, old))).toBe(true)
      expect(await fileExists(copyPath(server.dataDir, stray))).toBe(true)
      const first = await server.services.gc.run({ orphans: true })
      expect(first).toMatchObject({ orphans: 2, errors: [] })
      await expectCollected(server, [old.hash])
      // The stray copy went; the copy the row names stayed.
      expect(await copiesOnDisk(server.dataDir, kept)).toEqual([keptCopy])
      await expectStored(server, [kept])
      expect(await fileExists(copyPath(server.dataDir, young))).toBe(true)

      server.advance(PAST_GRACE_MS)
      expect(await server.services.gc.run({ orphans: true })).toMatchObject({ orphans: 1, errors: [] })
      await expectCollected(server, [young.hash])
      await expectScrubClean(server)
    },
  )

  it.skipIf(!available)(
    'fraction 0.25: four runs read every chunk once, least recently verified first',
    async () => {
      const { server, hashes } = await storeWithFiles(4, 10)
      const blobs: BlobStore = server.services.blobs
      const read: string[] = []
      const get = blobs.get.bind(blobs)
      blobs.get = (key, range) => {
        read.push(key.hash)
        return get(key, range)
      }
      try {
        const perRun: string[][] = []
        for (let run = 0; run < 4; run++) {
          server.advance(1000)
          const before = read.length
          const report = await server.services.scrubber.run({ fraction: 0.25 })
          expect(report).toMatchObject({ checked: hashes.length / 4, clean: true, unknown: [] })
          perRun.push(read.slice(before))
        }
        expect(sorted(read)).toEqual(sorted(hashes))
        expect(perRun.map((run) => run.length)).toEqual([10, 10, 10, 10])

        // A chunk that rots now is found within the next four runs, and then in every run after
        // (a bad chunk is never marked verified, so it stays first in line).
        const [rotten] = pick(hashes, 1, seededRandom(SEED)) as [string]
        const file = await rowCopyPath(server, rotten)
        const bytes = await readFile(file)
        bytes[0] = (bytes[0] as number) ^ 0x01
        await writeFile(file, bytes)
        const found: boolean[] = []
        let checked = 0
        for (let run = 0; run < 6; run++) {
          server.advance(1000)
          const report = await server.services.scrubber.run({ fraction: 0.25 })
          found.push(report.corrupt.some((c) => c.hash === rotten))
          expect(report.corrupt.every((c) => c.hash === rotten)).toBe(true)
          expect(report.clean).toBe(!found.at(-1))
          // Marked damaged the first time it is found, and counted damaged from then on.
          const firstFound = found.indexOf(true) === run
          expect(report.markedDamaged).toEqual(firstFound ? [rotten] : [])
          expect(report.damaged).toBe(found.includes(true) ? 1 : 0)
          if (run < 4) checked += report.checked
        }
        expect(checked).toBe(hashes.length)
        const first = found.indexOf(true)
        expect(first).toBeGreaterThanOrEqual(0)
        expect(first).toBeLessThan(4)
        expect(found.slice(first).every(Boolean)).toBe(true)
      } finally {
        blobs.get = get
      }
    },
  )

  it.skipIf(!available)('a chunk that cannot be read is a read error, never missing', async () => {
    const { server, hashes } = await storeWithFiles(1, 6)
    const [unreadable, locked] = pick(hashes, 2, seededRandom(SEED)) as [string, string]
    const unreadableCopy = await rowCopyPath(server, unreadable)
    const lockedCopy = await rowCopyPath(server, locked)
    // A directory where the chunk's copy should be: opening it for reading fails with EISDIR, as root too.
    await rm(unreadableCopy)
    await mkdir(unreadableCopy)
    const expected = [unreadable]
    const asRoot = process.getuid?.() === 0
    if (!asRoot) {
      await chmod(lockedCopy, 0o000)
      expected.push(locked)
    }
    try {
      for (const fraction of [1, 0.5, 0.5]) {
        const report = await server.services.scrubber.run({ fraction })
        expect(report.missing).toEqual([])
        expect(report.corrupt).toEqual([])
        // A fault of the disk is not damage of the chunk: nothing is marked.
        expect(report.markedDamaged).toEqual([])
        expect(report.damaged).toBe(0)
        expect(report.clean).toBe(false)
        // The full run names them all; a half run takes the least recently verified half first,
        // and the unreadable chunks, never verified, are always in it.
        expect(sorted(report.readErrors.map((e) => e.hash)), `fraction ${fraction}`).toEqual(sorted(expected))
        // The full run also walks the store for unknown bytes: the directory stops that walk, and
        // the run says so instead of failing and losing what it found.
        if (fraction === 1) expect(report.storeErrors).toEqual([expect.stringContaining('EISDIR')])
        else expect(report.storeErrors).toEqual([])
      }
      expect((await stat(unreadableCopy)).isDirectory()).toBe(true)
      // Nor is an unreadable chunk collected, or its row given up.
      await gcAfterGrace(server)
      expect(await server.services.meta.chunks.find(unreadable)).toMatchObject({
        state: 'live',
        damaged: false,
      })
    } finally {
      if (!asRoot) await chmod(lockedCopy, 0o644)
    }
  })
})

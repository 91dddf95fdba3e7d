import { randomBytes } from 'node:crypto'
import { chmod, mkdir, readFile, rm, stat, truncate, unlink, utimes, writeFile } from 'node:fs/promises'
import path from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import type { BlobStore } from '../../src/ports/blob-store.js'
import { ApiClient, sha256 } from '../helpers/api-client.js'
import { BACKENDS } from '../helpers/backends.js'
import { startTestServer, type TestServer } from '../helpers/test-server.js'
import {
  chunkPath,
  concat,
  expectCollected,
  expectScrubClean,
  expectStored,
  fileExists,
  GRACE_MS,
  gcAfterGrace,
  PAST_GRACE_MS,
  pick,
  randomParts,
  seededRandom,
  uploadParts,
} from './gc-helpers.js'

/** Fixed, so that a failure names the same chunks when it is run again. */
const SEED = 0x5c4b
const sorted = (hashes: Iterable<string>): string[] => [...hashes].sort()

describe.each(BACKENDS)('scrub detection on %s', (backend, available) => {
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
      const damaged = new Map<string, Buffer>()
      for (const hash of flipped) {
        const bytes = await readFile(chunkPath(server.dataDir, hash))
        const at = Math.floor(random() * bytes.length)
        bytes[at] = (bytes[at] as number) ^ (1 << Math.floor(random() * 8))
        await writeFile(chunkPath(server.dataDir, hash), bytes)
        damaged.set(hash, bytes)
      }
      for (const hash of truncated) {
        const file = chunkPath(server.dataDir, hash)
        const bytes = await readFile(file)
        const length = Math.floor(random() * bytes.length)
        await truncate(file, length)
        damaged.set(hash, bytes.subarray(0, length))
      }
      for (const hash of deleted) await unlink(chunkPath(server.dataDir, hash))

      for (const pass of ['first', 'second']) {
        const report = await server.services.scrubber.run()
        expect(sorted(report.corrupt.map((c) => c.hash)), pass).toEqual(sorted([...flipped, ...truncated]))
        expect(sorted(report.missing), pass).toEqual(sorted(deleted))
        expect(report.readErrors).toEqual([])
        expect(report.unknown).toEqual([])
        expect(report.danglingReferences).toEqual([])
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

      // Nothing was removed or repaired: the damaged files are still there as they were.
      for (const [hash, bytes] of damaged) {
        expect((await readFile(chunkPath(server.dataDir, hash))).equals(bytes), hash).toBe(true)
      }
      for (const hash of deleted) expect(await fileExists(chunkPath(server.dataDir, hash))).toBe(false)
      for (const hash of hashes) {
        expect((await server.services.meta.chunks.find(hash))?.state).toBe('live')
      }
      // Nor does the collector touch referenced chunks, damaged or not.
      await gcAfterGrace(server)
      await gcAfterGrace(server)
      await expectStored(
        server,
        hashes.filter((hash) => !deleted.includes(hash)),
      )
      const intact = stored.find((file) => file.parts.every((part) => !chosen.includes(sha256(part))))
      if (intact) expect((await ann.download(intact.id)).body.equals(concat(intact.parts))).toBe(true)
    },
  )

  it.skipIf(!available)(
    'bytes with no row are unknown until gc --orphans reclaims them after the grace period',
    async () => {
      const { server } = await storeWithFiles(1, 4)
      const place = async (bytes: Buffer, mtime: Date) => {
        const hash = sha256(bytes)
        const file = chunkPath(server.dataDir, hash)
        await mkdir(path.dirname(file), { recursive: true })
        await writeFile(file, bytes)
        await utimes(file, mtime, mtime)
        return hash
      }
      // As a crash between writing the bytes and recording them leaves them.
      const old = await place(randomBytes(900), new Date(Date.now() - 2 * GRACE_MS))
      const young = await place(randomBytes(901), new Date())

      const report = await server.services.scrubber.run()
      expect(sorted(report.unknown)).toEqual(sorted([old, young]))
      expect(report.clean).toBe(false)
      expect(report.corrupt).toEqual([])
      expect(report.missing).toEqual([])
      // With the collector's grace, an upload in progress is not a problem yet.
      expect((await server.services.scrubber.run({ unknownGraceMs: GRACE_MS })).unknown).toEqual([old])
      expect(await fileExists(chunkPath(server.dataDir, old))).toBe(true)

      // A plain run does not walk the store; nor does one that finds the orphans too young.
      await server.services.gc.run()
      expect(await fileExists(chunkPath(server.dataDir, old))).toBe(true)
      const dry = await server.services.gc.run({ orphans: true, dryRun: true })
      expect(dry.orphans).toBe(1)
      expect(await fileExists(chunkPath(server.dataDir, old))).toBe(true)
      const first = await server.services.gc.run({ orphans: true })
      expect(first).toMatchObject({ orphans: 1, errors: [] })
      await expectCollected(server, [old])
      expect(await fileExists(chunkPath(server.dataDir, young))).toBe(true)

      server.advance(PAST_GRACE_MS)
      expect(await server.services.gc.run({ orphans: true })).toMatchObject({ orphans: 1, errors: [] })
      await expectCollected(server, [young])
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
      blobs.get = (hash, range) => {
        read.push(hash)
        return get(hash, range)
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
        const file = chunkPath(server.dataDir, rotten)
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
    // A directory where the chunk should be: opening it for reading fails with EISDIR, as root too.
    await rm(chunkPath(server.dataDir, unreadable))
    await mkdir(chunkPath(server.dataDir, unreadable))
    const expected = [unreadable]
    const asRoot = process.getuid?.() === 0
    if (!asRoot) {
      await chmod(chunkPath(server.dataDir, locked), 0o000)
      expected.push(locked)
    }
    try {
      for (const fraction of [1, 0.5, 0.5]) {
        const report = await server.services.scrubber.run({ fraction })
        expect(report.missing).toEqual([])
        expect(report.corrupt).toEqual([])
        expect(report.clean).toBe(false)
        // The full run names them all; a half run takes the least recently verified half first,
        // and the unreadable chunks, never verified, are always in it.
        expect(sorted(report.readErrors.map((e) => e.hash)), `fraction ${fraction}`).toEqual(sorted(expected))
        // The full run also walks the store for unknown bytes: the directory stops that walk, and
        // the run says so instead of failing and losing what it found.
        if (fraction === 1) expect(report.storeErrors).toEqual([expect.stringContaining('EISDIR')])
        else expect(report.storeErrors).toEqual([])
      }
      expect((await stat(chunkPath(server.dataDir, unreadable))).isDirectory()).toBe(true)
      // Nor is an unreadable chunk collected, or its row given up.
      await gcAfterGrace(server)
      expect((await server.services.meta.chunks.find(unreadable))?.state).toBe('live')
    } finally {
      if (!asRoot) await chmod(chunkPath(server.dataDir, locked), 0o644)
    }
  })
})

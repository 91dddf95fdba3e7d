import { randomBytes } from 'node:crypto'
import { beforeEach, describe, expect, it } from 'vitest'
import { type BlobKey, LEGACY_GENERATION, newGeneration } from '../../src/domain/blob-key.js'
import { MiB } from '../../src/domain/chunk-plan.js'
import { sha256Hex } from '../../src/domain/hashes.js'
import type { BlobStore, StoredBlob } from '../../src/ports/blob-store.js'
import { expectAppError } from '../helpers/app-error.js'
import { bodyOf, failingBody, fingerprint, readAll, verifiedBody } from '../helpers/streams.js'

/** A chunk, its hash, and a key to store it under (a fresh generation, as an upload writes it). */
const chunk = (size: number) => {
  const data = randomBytes(size)
  const hash = sha256Hex(data)
  return { data, hash, key: { hash, generation: newGeneration() } as BlobKey }
}

/**
 * How far a stored chunk's `storedAt` may sit outside the put's wall-clock window: file systems
 * stamp mtimes from a coarse clock that lags the one Date.now() reads by up to a tick.
 */
const CLOCK_SLACK_MS = 1000
const HOUR = 3600_000

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

/** By hash, then generation: `list` promises no order of its own. */
const byKey = (a: BlobKey, b: BlobKey) =>
  a.hash < b.hash
    ? -1
    : a.hash > b.hash
      ? 1
      : a.generation < b.generation
        ? -1
        : a.generation > b.generation
          ? 1
          : 0

export interface BlobStoreContractOptions {
  /**
   * Leaves in `store` what a put that never finished leaves behind (a crash mid-write: a temp
   * file, an abandoned multipart upload), as last written at `at` (epoch ms). Absent for a store
   * whose puts are never half done (the memory store).
   */
  abandonWrite?: (store: BlobStore, at: number) => Promise<void>
}

/**
 * What every BlobStore promises (src/ports/blob-store.ts). Each adapter's test file calls this
 * with a factory that returns a fresh, empty store, and adds its own cases.
 */
export function blobStoreContract(
  make: () => Promise<BlobStore>,
  options: BlobStoreContractOptions = {},
): void {
  let store: BlobStore

  beforeEach(async () => {
    store = await make()
  })

  /** Fingerprint of the stored bytes, or null. */
  const stored = async (key: BlobKey) => {
    const body = await store.get(key)
    return body === null ? null : fingerprint(await readAll(body))
  }

  /** Everything `list` yields, by key (its own order is unspecified). */
  const listed = async () => {
    const blobs: StoredBlob[] = []
    for await (const blob of store.list()) blobs.push(blob)
    return blobs.sort(byKey)
  }
  const listedKeys = async () => (await listed()).map(({ hash, generation }) => ({ hash, generation }))

  describe('put and get', () => {
    it('round-trips a small chunk', async () => {
      const { data, key } = chunk(100)
      await store.put(key, bodyOf(data))
      expect(await stored(key)).toEqual(fingerprint(data))
    })

    it('round-trips an empty chunk', async () => {
      const { data, key } = chunk(0)
      await store.put(key, bodyOf(data))
      expect(await store.has(key)).toBe(true)
      expect(await stored(key)).toEqual(fingerprint(Buffer.alloc(0)))
    })

    it('round-trips a multi-MiB chunk through a verifying body', async () => {
      const { data, hash, key } = chunk(9 * MiB + 123)
      await store.put(key, verifiedBody(data, { expectedHash: hash }))
      expect(await stored(key)).toEqual(fingerprint(data))
    })

    it('returns null for a missing chunk', async () => {
      expect(await store.get(chunk(10).key)).toBeNull()
      expect(await store.get(chunk(10).key, { start: 0, end: 0 })).toBeNull()
    })

    it('says whether a chunk exists', async () => {
      const { data, key } = chunk(10)
      expect(await store.has(key)).toBe(false)
      await store.put(key, bodyOf(data))
      expect(await store.has(key)).toBe(true)
    })
  })

  describe('range reads', () => {
    const { data, key } = chunk(2 * MiB + 7)

    beforeEach(async () => {
      await store.put(key, bodyOf(data))
    })

    const read = async (start: number, end: number) => {
      const body = await store.get(key, { start, end })
      expect(body).not.toBeNull()
      return fingerprint(await readAll(body!))
    }

    it('reads the first byte', async () => {
      expect(await read(0, 0)).toEqual(fingerprint(data.subarray(0, 1)))
    })

    it('reads a range in the middle', async () => {
      expect(await read(MiB - 3, MiB + 300_000)).toEqual(fingerprint(data.subarray(MiB - 3, MiB + 300_001)))
    })

    it('reads the last byte', async () => {
      expect(await read(data.length - 1, data.length - 1)).toEqual(
        fingerprint(data.subarray(data.length - 1)),
      )
    })

    it('reads the whole chunk as a range', async () => {
      expect(await read(0, data.length - 1)).toEqual(fingerprint(data))
    })

    it('rejects an inverted or negative range', async () => {
      await expect(store.get(key, { start: 20, end: 10 })).rejects.toThrow(RangeError)
      await expect(store.get(key, { start: -1, end: 10 })).rejects.toThrow(RangeError)
    })
  })

  describe('idempotence', () => {
    it('keeps the original bytes when the key is put again, and still consumes the body', async () => {
      const { data, key } = chunk(1000)
      await store.put(key, bodyOf(data))
      const other = bodyOf(randomBytes(300_000), 1000)
      await store.put(key, other)
      expect(other.fullyRead).toBe(true)
      expect(await stored(key)).toEqual(fingerprint(data))
    })

    it('reports a mismatching body for a key that is already stored, and keeps the original', async () => {
      const { data, hash, key } = chunk(1000)
      await store.put(key, bodyOf(data))
      const wrong = verifiedBody(randomBytes(1000), { expectedHash: hash })
      await expectAppError(store.put(key, wrong), 'HASH_MISMATCH')
      expect(await stored(key)).toEqual(fingerprint(data))
    })

    it('lets two concurrent puts of the same key both succeed', async () => {
      const { data, hash, key } = chunk(3 * MiB)
      await Promise.all([
        store.put(key, verifiedBody(data, { expectedHash: hash })),
        store.put(key, verifiedBody(data, { expectedHash: hash }, 1000)),
      ])
      expect(await stored(key)).toEqual(fingerprint(data))
    })

    it('lets many concurrent puts of different hashes succeed', async () => {
      const chunks = Array.from({ length: 20 }, () => chunk(50_000))
      await Promise.all(chunks.map(({ data, key }) => store.put(key, bodyOf(data))))
      for (const { data, key } of chunks) expect(await stored(key)).toEqual(fingerprint(data))
    })
  })

  describe('generations', () => {
    it('keeps two generations of one hash as independent copies', async () => {
      const { data, hash, key: first } = chunk(5000)
      const second = { hash, generation: newGeneration() }
      await store.put(first, bodyOf(data))
      await store.put(second, verifiedBody(data, { expectedHash: hash }))
      expect(await stored(first)).toEqual(fingerprint(data))
      expect(await stored(second)).toEqual(fingerprint(data))

      // A late delete of one copy (a collector's, say) never touches the other.
      await store.delete(first)
      expect(await store.has(first)).toBe(false)
      expect(await store.get(first)).toBeNull()
      expect(await store.stat(first)).toBeNull()
      expect(await store.has(second)).toBe(true)
      expect(await stored(second)).toEqual(fingerprint(data))
      const ranged = await store.get(second, { start: 10, end: 19 })
      expect(fingerprint(await readAll(ranged!))).toEqual(fingerprint(data.subarray(10, 20)))
      expect(await listedKeys()).toEqual([second])
    })

    it('keeps each generation bytes of its own: a put under one never changes another', async () => {
      // The store does not verify: two generations of a hash may even hold different bytes (one
      // of them rotten), and each reads back as written.
      const { data, key: good } = chunk(1000)
      const rotten = { hash: good.hash, generation: newGeneration() }
      const other = randomBytes(700)
      await store.put(good, bodyOf(data))
      await store.put(rotten, bodyOf(other))
      expect(await stored(good)).toEqual(fingerprint(data))
      expect(await stored(rotten)).toEqual(fingerprint(other))
      expect(await store.stat(good)).toMatchObject({ size: 1000 })
      expect(await store.stat(rotten)).toMatchObject({ size: 700 })
    })

    it('lists every copy with its generation', async () => {
      const { data, hash, key: first } = chunk(100)
      const second = { hash, generation: newGeneration() }
      const legacy = { hash, generation: LEGACY_GENERATION }
      const other = chunk(200)
      for (const key of [first, second, legacy]) await store.put(key, bodyOf(data))
      await store.put(other.key, bodyOf(other.data))
      const blobs = await listed()
      expect(blobs.map(({ hash, generation, size }) => ({ hash, generation, size }))).toEqual(
        [
          { ...first, size: 100 },
          { ...second, size: 100 },
          { ...legacy, size: 100 },
          { ...other.key, size: 200 },
        ].sort(byKey),
      )
      for (const blob of blobs) {
        expect(await store.stat(blob)).toEqual({ size: blob.size, storedAt: blob.storedAt })
      }
    })

    it("stores, reads, lists and deletes a legacy copy (generation '', the bare hash)", async () => {
      const { data, hash } = chunk(3000)
      const legacy = { hash, generation: LEGACY_GENERATION }
      const current = { hash, generation: newGeneration() }
      expect(await store.has(legacy)).toBe(false)
      await store.put(legacy, bodyOf(data))
      expect(await store.has(legacy)).toBe(true)
      expect(await stored(legacy)).toEqual(fingerprint(data))
      const ranged = await store.get(legacy, { start: 0, end: 99 })
      expect(fingerprint(await readAll(ranged!))).toEqual(fingerprint(data.subarray(0, 100)))
      expect(await store.stat(legacy)).toMatchObject({ size: 3000 })
      expect(await listedKeys()).toEqual([legacy])
      // A legacy copy and a generation of the same hash are two copies, too.
      expect(await store.has(current)).toBe(false)
      await store.put(current, bodyOf(data))
      await store.delete(legacy)
      expect(await store.has(legacy)).toBe(false)
      expect(await stored(current)).toEqual(fingerprint(data))
      expect(await listedKeys()).toEqual([current])
    })

    it('refuses a malformed generation in every operation', async () => {
      const { hash } = chunk(10)
      const bad: unknown[] = [
        'ABCDEF0123456789',
        '0123456789abcde',
        '0123456789abcdef0',
        'g123456789abcdef',
        '../../../../etc/',
        '0123456789abcde/',
        '.',
        ' ',
        undefined,
        null,
        16,
      ]
      for (const generation of bad) {
        const key = { hash, generation } as BlobKey
        await expect(store.put(key, bodyOf(Buffer.from('x')))).rejects.toMatchObject({
          code: 'INVALID_REQUEST',
        })
        await expectAppError(store.get(key), 'INVALID_REQUEST')
        await expectAppError(store.has(key), 'INVALID_REQUEST')
        await expectAppError(store.stat(key), 'INVALID_REQUEST')
        await expectAppError(store.delete(key), 'INVALID_REQUEST')
      }
      expect(await listed()).toEqual([])
    })
  })

  describe('list and stat', () => {
    it('lists nothing in an empty store', async () => {
      expect(await listed()).toEqual([])
    })

    it('lists every chunk put, with its key, size and when it was stored', async () => {
      const chunks = [chunk(0), chunk(100), chunk(MiB + 1)]
      const before = Date.now()
      for (const { data, key } of chunks) await store.put(key, bodyOf(data))
      const after = Date.now()
      const blobs = await listed()
      const expected = chunks.map(({ data, key }) => ({ ...key, size: data.length })).sort(byKey)
      expect(blobs.map(({ hash, generation, size }) => ({ hash, generation, size }))).toEqual(expected)
      for (const { storedAt } of blobs) {
        expect(storedAt).toBeGreaterThanOrEqual(before - CLOCK_SLACK_MS)
        expect(storedAt).toBeLessThanOrEqual(after + CLOCK_SLACK_MS)
      }
    })

    it('lists a copy once however often its key was put', async () => {
      const { data, key } = chunk(1000)
      await store.put(key, bodyOf(data))
      await Promise.all([store.put(key, bodyOf(data)), store.put(key, bodyOf(data))])
      expect(await listedKeys()).toEqual([key])
    })

    it('neither lists nor stats deleted chunks', async () => {
      const [kept, deleted] = [chunk(10), chunk(20)]
      await store.put(kept.key, bodyOf(kept.data))
      await store.put(deleted.key, bodyOf(deleted.data))
      await store.delete(deleted.key)
      expect(await listedKeys()).toEqual([kept.key])
      expect(await store.stat(deleted.key)).toBeNull()
      await store.delete(kept.key)
      expect(await listed()).toEqual([])
    })

    it('stats a stored chunk as list reports it, and a missing one as null', async () => {
      const { data, key } = chunk(5000)
      expect(await store.stat(key)).toBeNull()
      await store.put(key, bodyOf(data))
      const [listedBlob] = await listed()
      expect(await store.stat(key)).toEqual({ size: 5000, storedAt: listedBlob!.storedAt })
    })

    it('keeps storedAt when the same key is put again', async () => {
      const { data, key } = chunk(100)
      await store.put(key, bodyOf(data))
      const first = await store.stat(key)
      // Long enough for any clock, coarse or not, to have moved on.
      await sleep(50)
      await store.put(key, bodyOf(data))
      expect(await store.stat(key)).toEqual(first)
    })
  })

  describe('a body that fails stores nothing', () => {
    const expectNothingStored = async (key: BlobKey) => {
      expect(await store.has(key)).toBe(false)
      expect(await store.get(key)).toBeNull()
      expect(await store.stat(key)).toBeNull()
      expect((await listed()).map((blob) => blob.hash)).not.toContain(key.hash)
    }

    it('when the bytes do not match the hash', async () => {
      const { hash, key } = chunk(2 * MiB)
      const body = verifiedBody(randomBytes(2 * MiB), { expectedHash: hash })
      await expectAppError(store.put(key, body), 'HASH_MISMATCH')
      await expectNothingStored(key)
    })

    it('when more bytes arrive than declared', async () => {
      const { data, hash, key } = chunk(MiB)
      const body = verifiedBody(Buffer.concat([data, Buffer.alloc(1)]), {
        expectedHash: hash,
        expectedSize: data.length,
      })
      await expectAppError(store.put(key, body), 'CHUNK_SIZE_MISMATCH')
      await expectNothingStored(key)
    })

    it('when fewer bytes arrive than declared', async () => {
      const { data, hash, key } = chunk(MiB)
      const body = verifiedBody(data.subarray(0, MiB - 1), { expectedHash: hash, expectedSize: MiB })
      await expectAppError(store.put(key, body), 'CHUNK_SIZE_MISMATCH')
      await expectNothingStored(key)
    })

    it('when the body errors midway', async () => {
      const { data, key } = chunk(MiB)
      const dropped = Object.assign(new Error('connection reset'), { code: 'ECONNRESET' })
      await expect(store.put(key, failingBody(data.subarray(0, MiB / 2), dropped))).rejects.toBe(dropped)
      await expectNothingStored(key)
    })

    it('and a later put of the same key succeeds', async () => {
      const { data, hash, key } = chunk(1000)
      await expect(store.put(key, verifiedBody(randomBytes(1000), { expectedHash: hash }))).rejects.toThrow()
      await store.put(key, verifiedBody(data, { expectedHash: hash }))
      expect(await stored(key)).toEqual(fingerprint(data))
    })
  })

  describe('delete', () => {
    it('removes a chunk, and is idempotent', async () => {
      const { data, key } = chunk(100)
      await store.put(key, bodyOf(data))
      await store.delete(key)
      expect(await store.has(key)).toBe(false)
      expect(await store.get(key)).toBeNull()
      await store.delete(key)
    })

    it('accepts a chunk that never existed', async () => {
      await store.delete(chunk(1).key)
      await store.delete({ hash: chunk(1).hash, generation: LEGACY_GENERATION })
    })

    it('allows the same key to be stored again', async () => {
      const { data, key } = chunk(100)
      await store.put(key, bodyOf(data))
      await store.delete(key)
      await store.put(key, bodyOf(data))
      expect(await stored(key)).toEqual(fingerprint(data))
    })
  })

  describe('removeAbandonedWrites', () => {
    it('leaves every stored copy alone, and answers 0 when no write was abandoned', async () => {
      const copies = [chunk(10), chunk(MiB), chunk(0)]
      for (const { data, key } of copies) await store.put(key, bodyOf(data))
      const legacy = { hash: copies[0]!.hash, generation: LEGACY_GENERATION }
      await store.put(legacy, bodyOf(copies[0]!.data))
      // A cutoff in the future: everything there is older than it.
      expect(await store.removeAbandonedWrites(Date.now() + HOUR)).toBe(0)
      for (const { data, key } of copies) expect(await stored(key)).toEqual(fingerprint(data))
      expect(await stored(legacy)).toEqual(fingerprint(copies[0]!.data))
      expect(await listed()).toHaveLength(4)
    })

    // Only for stores whose puts can be left half done (not the memory store's).
    const abandonWrite = options.abandonWrite
    if (abandonWrite)
      it('removes what puts abandoned before the cutoff, and only that', async () => {
        const abandon = abandonWrite
        const { data, key } = chunk(1000)
        await store.put(key, bodyOf(data))
        const now = Date.now()
        await abandon(store, now - 2 * HOUR)
        await abandon(store, now - 2 * HOUR)
        // Younger than the cutoff: possibly a put still running, in another process.
        await abandon(store, now)
        expect(await store.removeAbandonedWrites(now - HOUR)).toBe(2)
        expect(await store.removeAbandonedWrites(now - HOUR)).toBe(0)
        expect(await store.removeAbandonedWrites(now + HOUR)).toBe(1)
        expect(await store.removeAbandonedWrites(now + HOUR)).toBe(0)
        expect(await stored(key)).toEqual(fingerprint(data))
        expect(await listedKeys()).toEqual([key])
      })
  })

  it('rejects a malformed hash in every operation', async () => {
    for (const bad of ['../x', '../../etc/passwd', 'A'.repeat(64), `${'a'.repeat(63)}/`, '']) {
      for (const generation of [newGeneration(), LEGACY_GENERATION]) {
        const key = { hash: bad, generation }
        await expect(store.put(key, bodyOf(Buffer.from('x')))).rejects.toMatchObject({
          code: 'INVALID_REQUEST',
        })
        await expectAppError(store.get(key), 'INVALID_REQUEST')
        await expectAppError(store.has(key), 'INVALID_REQUEST')
        await expectAppError(store.stat(key), 'INVALID_REQUEST')
        await expectAppError(store.delete(key), 'INVALID_REQUEST')
      }
    }
  })
  // No case for ping here: on a usable store it answers, which no store can fail, and only a
  // store's own tests know how to make it unusable (disk-blob-store*.test.ts remove or break
  // its root). The memory store's ping does nothing.
}

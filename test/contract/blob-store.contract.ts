import { randomBytes } from 'node:crypto'
import { beforeEach, describe, expect, it } from 'vitest'
import { MiB } from '../../src/domain/chunk-plan.js'
import { sha256Hex } from '../../src/domain/hashes.js'
import type { BlobStore, StoredBlob } from '../../src/ports/blob-store.js'
import { bodyOf, failingBody, fingerprint, readAll, verifiedBody } from '../helpers/streams.js'

/** A chunk and its name. */
const chunk = (size: number) => {
  const data = randomBytes(size)
  return { data, hash: sha256Hex(data) }
}

/**
 * How far a stored chunk's `storedAt` may sit outside the put's wall-clock window: file systems
 * stamp mtimes from a coarse clock that lags the one Date.now() reads by up to a tick.
 */
const CLOCK_SLACK_MS = 1000

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

/**
 * What every BlobStore promises (src/ports/blob-store.ts). Each adapter's test file calls this
 * with a factory that returns a fresh, empty store, and adds its own cases.
 */
export function blobStoreContract(make: () => Promise<BlobStore>): void {
  let store: BlobStore

  beforeEach(async () => {
    store = await make()
  })

  /** Fingerprint of the stored bytes, or null. */
  const stored = async (hash: string) => {
    const body = await store.get(hash)
    return body === null ? null : fingerprint(await readAll(body))
  }

  /** Everything `list` yields, by hash (its own order is unspecified). */
  const listed = async () => {
    const blobs: StoredBlob[] = []
    for await (const blob of store.list()) blobs.push(blob)
    return blobs.sort((a, b) => (a.hash < b.hash ? -1 : a.hash > b.hash ? 1 : 0))
  }
  const listedHashes = async () => (await listed()).map(({ hash }) => hash)

  describe('put and get', () => {
    it('round-trips a small chunk', async () => {
      const { data, hash } = chunk(100)
      await store.put(hash, bodyOf(data))
      expect(await stored(hash)).toEqual(fingerprint(data))
    })

    it('round-trips an empty chunk', async () => {
      const { data, hash } = chunk(0)
      await store.put(hash, bodyOf(data))
      expect(await store.has(hash)).toBe(true)
      expect(await stored(hash)).toEqual(fingerprint(Buffer.alloc(0)))
    })

    it('round-trips a multi-MiB chunk through a verifying body', async () => {
      const { data, hash } = chunk(9 * MiB + 123)
      await store.put(hash, verifiedBody(data, { expectedHash: hash }))
      expect(await stored(hash)).toEqual(fingerprint(data))
    })

    it('returns null for a missing chunk', async () => {
      expect(await store.get(chunk(10).hash)).toBeNull()
      expect(await store.get(chunk(10).hash, { start: 0, end: 0 })).toBeNull()
    })

    it('says whether a chunk exists', async () => {
      const { data, hash } = chunk(10)
      expect(await store.has(hash)).toBe(false)
      await store.put(hash, bodyOf(data))
      expect(await store.has(hash)).toBe(true)
    })
  })

  describe('range reads', () => {
    const { data, hash } = chunk(2 * MiB + 7)

    beforeEach(async () => {
      await store.put(hash, bodyOf(data))
    })

    const read = async (start: number, end: number) => {
      const body = await store.get(hash, { start, end })
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
      await expect(store.get(hash, { start: 20, end: 10 })).rejects.toThrow(RangeError)
      await expect(store.get(hash, { start: -1, end: 10 })).rejects.toThrow(RangeError)
    })
  })

  describe('idempotence', () => {
    it('keeps the original bytes when the hash is put again, and still consumes the body', async () => {
      const { data, hash } = chunk(1000)
      await store.put(hash, bodyOf(data))
      const other = bodyOf(randomBytes(300_000), 1000)
      await store.put(hash, other)
      expect(other.fullyRead).toBe(true)
      expect(await stored(hash)).toEqual(fingerprint(data))
    })

    it('reports a mismatching body for a hash that is already stored, and keeps the original', async () => {
      const { data, hash } = chunk(1000)
      await store.put(hash, bodyOf(data))
      const wrong = verifiedBody(randomBytes(1000), { expectedHash: hash })
      await expect(store.put(hash, wrong)).rejects.toMatchObject({ code: 'HASH_MISMATCH' })
      expect(await stored(hash)).toEqual(fingerprint(data))
    })

    it('lets two concurrent puts of the same hash both succeed', async () => {
      const { data, hash } = chunk(3 * MiB)
      await Promise.all([
        store.put(hash, verifiedBody(data, { expectedHash: hash })),
        store.put(hash, verifiedBody(data, { expectedHash: hash }, 1000)),
      ])
      expect(await stored(hash)).toEqual(fingerprint(data))
    })

    it('lets many concurrent puts of different hashes succeed', async () => {
      const chunks = Array.from({ length: 20 }, () => chunk(50_000))
      await Promise.all(chunks.map(({ data, hash }) => store.put(hash, bodyOf(data))))
      for (const { data, hash } of chunks) expect(await stored(hash)).toEqual(fingerprint(data))
    })
  })

  describe('list and stat', () => {
    it('lists nothing in an empty store', async () => {
      expect(await listed()).toEqual([])
    })

    it('lists every chunk put, with its size and when it was stored', async () => {
      const chunks = [chunk(0), chunk(100), chunk(MiB + 1)]
      const before = Date.now()
      for (const { data, hash } of chunks) await store.put(hash, bodyOf(data))
      const after = Date.now()
      const blobs = await listed()
      const expected = chunks
        .map(({ data, hash }) => ({ hash, size: data.length }))
        .sort((a, b) => (a.hash < b.hash ? -1 : 1))
      expect(blobs.map(({ hash, size }) => ({ hash, size }))).toEqual(expected)
      for (const { storedAt } of blobs) {
        expect(storedAt).toBeGreaterThanOrEqual(before - CLOCK_SLACK_MS)
        expect(storedAt).toBeLessThanOrEqual(after + CLOCK_SLACK_MS)
      }
    })

    it('lists a chunk once however often it was put', async () => {
      const { data, hash } = chunk(1000)
      await store.put(hash, bodyOf(data))
      await Promise.all([store.put(hash, bodyOf(data)), store.put(hash, bodyOf(data))])
      expect(await listedHashes()).toEqual([hash])
    })

    it('neither lists nor stats deleted chunks', async () => {
      const [kept, deleted] = [chunk(10), chunk(20)]
      await store.put(kept.hash, bodyOf(kept.data))
      await store.put(deleted.hash, bodyOf(deleted.data))
      await store.delete(deleted.hash)
      expect(await listedHashes()).toEqual([kept.hash])
      expect(await store.stat(deleted.hash)).toBeNull()
      await store.delete(kept.hash)
      expect(await listed()).toEqual([])
    })

    it('stats a stored chunk as list reports it, and a missing one as null', async () => {
      const { data, hash } = chunk(5000)
      expect(await store.stat(hash)).toBeNull()
      await store.put(hash, bodyOf(data))
      const [listedBlob] = await listed()
      expect(await store.stat(hash)).toEqual({ size: 5000, storedAt: listedBlob!.storedAt })
    })

    it('keeps storedAt when the same chunk is put again', async () => {
      const { data, hash } = chunk(100)
      await store.put(hash, bodyOf(data))
      const first = await store.stat(hash)
      // Long enough for any clock, coarse or not, to have moved on.
      await sleep(50)
      await store.put(hash, bodyOf(data))
      expect(await store.stat(hash)).toEqual(first)
    })
  })

  describe('a body that fails stores nothing', () => {
    const expectNothingStored = async (hash: string) => {
      expect(await store.has(hash)).toBe(false)
      expect(await store.get(hash)).toBeNull()
      expect(await store.stat(hash)).toBeNull()
      expect(await listedHashes()).not.toContain(hash)
    }

    it('when the bytes do not match the hash', async () => {
      const { hash } = chunk(2 * MiB)
      const body = verifiedBody(randomBytes(2 * MiB), { expectedHash: hash })
      await expect(store.put(hash, body)).rejects.toMatchObject({ code: 'HASH_MISMATCH' })
      await expectNothingStored(hash)
    })

    it('when more bytes arrive than declared', async () => {
      const { data, hash } = chunk(MiB)
      const body = verifiedBody(Buffer.concat([data, Buffer.alloc(1)]), {
        expectedHash: hash,
        expectedSize: data.length,
      })
      await expect(store.put(hash, body)).rejects.toMatchObject({ code: 'CHUNK_SIZE_MISMATCH' })
      await expectNothingStored(hash)
    })

    it('when fewer bytes arrive than declared', async () => {
      const { data, hash } = chunk(MiB)
      const body = verifiedBody(data.subarray(0, MiB - 1), { expectedHash: hash, expectedSize: MiB })
      await expect(store.put(hash, body)).rejects.toMatchObject({ code: 'CHUNK_SIZE_MISMATCH' })
      await expectNothingStored(hash)
    })

    it('when the body errors midway', async () => {
      const { data, hash } = chunk(MiB)
      const dropped = Object.assign(new Error('connection reset'), { code: 'ECONNRESET' })
      await expect(store.put(hash, failingBody(data.subarray(0, MiB / 2), dropped))).rejects.toBe(dropped)
      await expectNothingStored(hash)
    })

    it('and a later put of the same hash succeeds', async () => {
      const { data, hash } = chunk(1000)
      await expect(store.put(hash, verifiedBody(randomBytes(1000), { expectedHash: hash }))).rejects.toThrow()
      await store.put(hash, verifiedBody(data, { expectedHash: hash }))
      expect(await stored(hash)).toEqual(fingerprint(data))
    })
  })

  describe('delete', () => {
    it('removes a chunk, and is idempotent', async () => {
      const { data, hash } = chunk(100)
      await store.put(hash, bodyOf(data))
      await store.delete(hash)
      expect(await store.has(hash)).toBe(false)
      expect(await store.get(hash)).toBeNull()
      await store.delete(hash)
    })

    it('accepts a chunk that never existed', async () => {
      await store.delete(chunk(1).hash)
    })

    it('allows the chunk to be stored again', async () => {
      const { data, hash } = chunk(100)
      await store.put(hash, bodyOf(data))
      await store.delete(hash)
      await store.put(hash, bodyOf(data))
      expect(await stored(hash)).toEqual(fingerprint(data))
    })
  })

  it('rejects a malformed hash in every operation', async () => {
    for (const bad of ['../x', '../../etc/passwd', 'A'.repeat(64), `${'a'.repeat(63)}/`, '']) {
      await expect(store.put(bad, bodyOf(Buffer.from('x')))).rejects.toMatchObject({
        code: 'INVALID_REQUEST',
      })
      await expect(store.get(bad)).rejects.toMatchObject({ code: 'INVALID_REQUEST' })
      await expect(store.has(bad)).rejects.toMatchObject({ code: 'INVALID_REQUEST' })
      await expect(store.stat(bad)).rejects.toMatchObject({ code: 'INVALID_REQUEST' })
      await expect(store.delete(bad)).rejects.toMatchObject({ code: 'INVALID_REQUEST' })
    }
  })

  it('answers ping when usable', async () => {
    await store.ping()
  })
}

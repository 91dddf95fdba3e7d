import { randomBytes } from 'node:crypto'
import { beforeEach, describe, expect, it } from 'vitest'
import { MiB } from '../../src/domain/chunk-plan.js'
import { sha256Hex } from '../../src/domain/hashes.js'
import type { BlobStore } from '../../src/ports/blob-store.js'
import { bodyOf, failingBody, fingerprint, readAll, verifiedBody } from '../helpers/streams.js'

/** A chunk and its name. */
const chunk = (size: number) => {
  const data = randomBytes(size)
  return { data, hash: sha256Hex(data) }
}

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

  describe('a body that fails stores nothing', () => {
    const expectNothingStored = async (hash: string) => {
      expect(await store.has(hash)).toBe(false)
      expect(await store.get(hash)).toBeNull()
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
      await expect(store.delete(bad)).rejects.toMatchObject({ code: 'INVALID_REQUEST' })
    }
  })

  it('answers ping when usable', async () => {
    await store.ping()
  })
}

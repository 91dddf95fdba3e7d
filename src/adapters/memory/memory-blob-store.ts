import { Readable } from 'node:stream'
import { invalid } from '../../domain/errors.js'
import { type ChunkHash, isChunkHash } from '../../domain/hashes.js'
import type { BlobStore, ByteRange, StoredBlob } from '../../ports/blob-store.js'

interface MemoryBlob {
  bytes: Buffer
  storedAt: number
}

/**
 * Chunks in a Map: the test fake, and the reference behaviour the disk and S3 stores must match
 * (test/contract/blob-store.contract.ts runs against all of them).
 */
export class MemoryBlobStore implements BlobStore {
  readonly #blobs = new Map<ChunkHash, MemoryBlob>()

  async put(hash: ChunkHash, body: Readable): Promise<void> {
    assertChunkHash(hash)
    const parts: Buffer[] = []
    // Read to the end even when the hash is present: a verifying body reports a mismatch only there.
    for await (const part of body) parts.push(Buffer.isBuffer(part) ? part : Buffer.from(part))
    // A concurrent put may have stored the same hash meanwhile: the first one to finish wins.
    if (!this.#blobs.has(hash)) this.#blobs.set(hash, { bytes: Buffer.concat(parts), storedAt: Date.now() })
  }

  async get(hash: ChunkHash, range?: ByteRange): Promise<Readable | null> {
    assertChunkHash(hash)
    assertByteRange(range)
    const blob = this.#blobs.get(hash)?.bytes
    if (blob === undefined) return null
    // A copy, so a consumer that writes into its buffers cannot change the stored chunk.
    const bytes = Buffer.from(range === undefined ? blob : blob.subarray(range.start, range.end + 1))
    return Readable.from(bytes.length === 0 ? [] : [bytes], { objectMode: false })
  }

  async has(hash: ChunkHash): Promise<boolean> {
    assertChunkHash(hash)
    return this.#blobs.has(hash)
  }

  async stat(hash: ChunkHash): Promise<{ size: number; storedAt: number } | null> {
    assertChunkHash(hash)
    const blob = this.#blobs.get(hash)
    return blob === undefined ? null : { size: blob.bytes.length, storedAt: blob.storedAt }
  }

  async *list(): AsyncIterable<StoredBlob> {
    // A Map iterator tolerates puts and deletes while it runs, as a directory walk does.
    for (const [hash, { bytes, storedAt }] of this.#blobs) yield { hash, size: bytes.length, storedAt }
  }

  async delete(hash: ChunkHash): Promise<void> {
    assertChunkHash(hash)
    this.#blobs.delete(hash)
  }

  async ping(): Promise<void> {}
}

function assertChunkHash(hash: unknown): asserts hash is ChunkHash {
  if (!isChunkHash(hash)) throw invalid('chunk hash must be a lowercase hex SHA-256')
}

function assertByteRange(range: ByteRange | undefined): void {
  if (range === undefined) return
  const { start, end } = range
  if (!Number.isSafeInteger(start) || !Number.isSafeInteger(end) || start < 0 || end < start) {
    throw new RangeError(`invalid byte range ${start}-${end}`)
  }
}

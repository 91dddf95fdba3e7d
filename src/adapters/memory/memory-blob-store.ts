import { Readable } from 'node:stream'
import { invalid } from '../../domain/errors.js'
import { type ChunkHash, isChunkHash } from '../../domain/hashes.js'
import type { BlobStore, ByteRange } from '../../ports/blob-store.js'

/**
 * Chunks in a Map: the test fake, and the reference behaviour the disk and S3 stores must match
 * (test/contract/blob-store.contract.ts runs against all of them).
 */
export class MemoryBlobStore implements BlobStore {
  readonly #blobs = new Map<ChunkHash, Buffer>()

  async put(hash: ChunkHash, body: Readable): Promise<void> {
    assertChunkHash(hash)
    const parts: Buffer[] = []
    // Read to the end even when the hash is present: a verifying body reports a mismatch only there.
    for await (const part of body) parts.push(Buffer.isBuffer(part) ? part : Buffer.from(part))
    // A concurrent put may have stored the same hash meanwhile: the first one to finish wins.
    if (!this.#blobs.has(hash)) this.#blobs.set(hash, Buffer.concat(parts))
  }

  async get(hash: ChunkHash, range?: ByteRange): Promise<Readable | null> {
    assertChunkHash(hash)
    assertByteRange(range)
    const blob = this.#blobs.get(hash)
    if (blob === undefined) return null
    // A copy, so a consumer that writes into its buffers cannot change the stored chunk.
    const bytes = Buffer.from(range === undefined ? blob : blob.subarray(range.start, range.end + 1))
    return Readable.from(bytes.length === 0 ? [] : [bytes], { objectMode: false })
  }

  async has(hash: ChunkHash): Promise<boolean> {
    assertChunkHash(hash)
    return this.#blobs.has(hash)
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

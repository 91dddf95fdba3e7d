import { Readable } from 'node:stream'
import { type BlobKey, blobName, isBlobKey, parseBlobName } from '../../domain/blob-key.js'
import { invalid } from '../../domain/errors.js'
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
  /** By blob name (`<hash>.<generation>`). */
  readonly #blobs = new Map<string, MemoryBlob>()

  async put(key: BlobKey, body: Readable): Promise<void> {
    const name = nameOf(key)
    const parts: Buffer[] = []
    // Read to the end even when the key is present: a verifying body reports a mismatch only there.
    for await (const part of body) parts.push(Buffer.isBuffer(part) ? part : Buffer.from(part))
    // A concurrent put may have stored the same key meanwhile: the first one to finish wins.
    if (!this.#blobs.has(name)) this.#blobs.set(name, { bytes: Buffer.concat(parts), storedAt: Date.now() })
  }

  async get(key: BlobKey, range?: ByteRange): Promise<Readable | null> {
    const name = nameOf(key)
    assertByteRange(range)
    const blob = this.#blobs.get(name)?.bytes
    if (blob === undefined) return null
    // A copy, so a consumer that writes into its buffers cannot change the stored chunk.
    const bytes = Buffer.from(range === undefined ? blob : blob.subarray(range.start, range.end + 1))
    return Readable.from(bytes.length === 0 ? [] : [bytes], { objectMode: false })
  }

  async has(key: BlobKey): Promise<boolean> {
    return this.#blobs.has(nameOf(key))
  }

  async stat(key: BlobKey): Promise<{ size: number; storedAt: number } | null> {
    const blob = this.#blobs.get(nameOf(key))
    return blob === undefined ? null : { size: blob.bytes.length, storedAt: blob.storedAt }
  }

  async *list(): AsyncIterable<StoredBlob> {
    // A Map iterator tolerates puts and deletes while it runs, as a directory walk does.
    for (const [name, { bytes, storedAt }] of this.#blobs) {
      const key = parseBlobName(name) as BlobKey
      yield { ...key, size: bytes.length, storedAt }
    }
  }

  async delete(key: BlobKey): Promise<void> {
    this.#blobs.delete(nameOf(key))
  }

  /** A put here is never half done: there is nothing to remove. */
  async removeAbandonedWrites(): Promise<number> {
    return 0
  }

  async ping(): Promise<void> {}
}

function nameOf(key: unknown): string {
  if (!isBlobKey(key)) throw invalid('a blob key is a lowercase hex SHA-256 and a generation')
  return blobName(key)
}

function assertByteRange(range: ByteRange | undefined): void {
  if (range === undefined) return
  const { start, end } = range
  if (!Number.isSafeInteger(start) || !Number.isSafeInteger(end) || start < 0 || end < start) {
    throw new RangeError(`invalid byte range ${start}-${end}`)
  }
}

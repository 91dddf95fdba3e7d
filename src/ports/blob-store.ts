import type { Readable } from 'node:stream'
import type { ChunkHash } from '../domain/hashes.js'

export interface ByteRange {
  /** First byte, inclusive. */
  start: number
  /** Last byte, inclusive. */
  end: number
}

/** A chunk as `list` reports it. */
export interface StoredBlob {
  hash: ChunkHash
  /** Bytes. */
  size: number
  /**
   * When the chunk was first stored, in epoch milliseconds (on disk, the file's mtime). A later
   * put of the same hash keeps the stored bytes and so does not change it.
   */
  storedAt: number
}

/**
 * Content-addressed chunk bytes. Implemented on local disk and (later) on S3.
 *
 * The store does not verify hashes itself: callers hand `put` a stream that errors at its
 * end when the bytes do not match (see services/verifying-stream.ts), and `put` must then
 * store nothing. This keeps verification in one place and in one pass over the bytes.
 */
export interface BlobStore {
  /**
   * Stores `body` under `hash` durably: when the promise resolves, the bytes survive a crash
   * or power loss. When `body` errors, nothing is stored (no partial object is ever visible
   * under `hash`). Idempotent: if the hash is already present the existing bytes are kept and
   * never rewritten; `body` is still consumed.
   */
  put(hash: ChunkHash, body: Readable): Promise<void>
  /**
   * The bytes (or a range of them), or null when the chunk does not exist.
   * An I/O failure is an error, never null: a storage fault must not read as "missing".
   */
  get(hash: ChunkHash, range?: ByteRange): Promise<Readable | null>
  /** Whether the chunk exists. Errors (not false) on I/O failure. */
  has(hash: ChunkHash): Promise<boolean>
  /** The chunk's size and `storedAt` (see StoredBlob), or null when it does not exist. Errors on I/O failure. */
  stat(hash: ChunkHash): Promise<{ size: number; storedAt: number } | null>
  /**
   * Every stored chunk, in no particular order, streamed (the store never holds the whole
   * listing). Chunks put or deleted while the listing runs may or may not appear. An I/O
   * failure errors the iteration: a storage fault must not read as "nothing there".
   */
  list(): AsyncIterable<StoredBlob>
  /** Removes the chunk; a missing one is not an error. */
  delete(hash: ChunkHash): Promise<void>
  /** Resolves when the store is usable; for /readyz. */
  ping(): Promise<void>
}

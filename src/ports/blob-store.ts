import type { Readable } from 'node:stream'
import type { BlobKey } from '../domain/blob-key.js'

export type { BlobKey } from '../domain/blob-key.js'

export interface ByteRange {
  /** First byte, inclusive. */
  start: number
  /** Last byte, inclusive. */
  end: number
}

/** A stored copy as `list` reports it. */
export interface StoredBlob extends BlobKey {
  /** Bytes. */
  size: number
  /** When the copy was stored, in epoch milliseconds (on disk, the file's mtime). */
  storedAt: number
}

/**
 * Chunk bytes, each copy under its key (hash and generation: domain/blob-key.ts says why).
 * Implemented on local disk and (later) on S3.
 *
 * The store does not verify hashes itself: callers hand `put` a stream that errors at its
 * end when the bytes do not match (see services/verifying-stream.ts), and `put` must then
 * store nothing. This keeps verification in one place and in one pass over the bytes.
 */
export interface BlobStore {
  /**
   * Stores `body` under `key` durably: when the promise resolves, the bytes survive a crash
   * or power loss. When `body` errors, nothing is stored (no partial object is ever visible
   * under `key`). A key names one write: if it is present already the existing bytes are
   * kept and never rewritten; `body` is still consumed.
   */
  put(key: BlobKey, body: Readable): Promise<void>
  /**
   * The bytes (or a range of them), or null when the copy does not exist.
   * An I/O failure is an error, never null: a storage fault must not read as "missing".
   */
  get(key: BlobKey, range?: ByteRange): Promise<Readable | null>
  /** Whether the copy exists. Errors (not false) on I/O failure. */
  has(key: BlobKey): Promise<boolean>
  /** The copy's size and `storedAt` (see StoredBlob), or null when it does not exist. Errors on I/O failure. */
  stat(key: BlobKey): Promise<{ size: number; storedAt: number } | null>
  /**
   * Every stored copy, in no particular order, streamed (the store never holds the whole
   * listing). Copies put or deleted while the listing runs may or may not appear. An I/O
   * failure errors the iteration: a storage fault must not read as "nothing there".
   */
  list(): AsyncIterable<StoredBlob>
  /** Removes the copy; a missing one is not an error. */
  delete(key: BlobKey): Promise<void>
  /**
   * Removes what puts that never finished left behind (a crash mid-write: temp files, or
   * abandoned multipart uploads) and that was started before `startedBefore` (epoch ms); a put
   * still running may share the store from another process. Answers how many went.
   */
  removeAbandonedWrites(startedBefore: number): Promise<number>
  /** Resolves when the store is usable; for /readyz. */
  ping(): Promise<void>
}

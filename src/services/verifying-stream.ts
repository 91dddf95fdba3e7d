import { createHash, type Hash } from 'node:crypto'
import { Transform, type TransformCallback } from 'node:stream'
import { MiB } from '../domain/chunk-plan.js'
import { AppError } from '../domain/errors.js'
import type { ChunkHash } from '../domain/hashes.js'

/**
 * How many bytes may wait on each side of the stream. Node 20's default (16 KiB) is smaller than
 * one HTTP body read, so every write would hit backpressure; 1 MiB keeps the pipe full while
 * bounding memory per upload.
 */
export const VERIFYING_STREAM_HIGH_WATER_MARK = MiB

export interface VerifyingStreamOptions {
  /** Lowercase hex SHA-256 the bytes must have. */
  expectedHash: ChunkHash
  /** Exact number of bytes that must arrive. */
  expectedSize: number
  highWaterMark?: number
}

/**
 * Passes bytes through unchanged while hashing and counting them, and fails the stream when they
 * are not the declared chunk: at once with CHUNK_SIZE_MISMATCH when more than `expectedSize` bytes
 * arrive, and at the end (before the readable side ends) with CHUNK_SIZE_MISMATCH for too few
 * bytes or HASH_MISMATCH for a wrong digest. A consumer such as `BlobStore.put` therefore sees an
 * error instead of an end, and stores nothing.
 *
 * Chunks are forwarded as they are (no copy); the hash reads them in place.
 */
export class VerifyingStream extends Transform {
  readonly expectedHash: ChunkHash
  readonly expectedSize: number
  readonly #hash: Hash = createHash('sha256')
  #bytes = 0
  #digest: string | undefined

  constructor({ expectedHash, expectedSize, highWaterMark }: VerifyingStreamOptions) {
    super({ highWaterMark: highWaterMark ?? VERIFYING_STREAM_HIGH_WATER_MARK })
    if (!Number.isSafeInteger(expectedSize) || expectedSize < 0) {
      throw new RangeError(`expectedSize must be a non-negative integer, got ${expectedSize}`)
    }
    this.expectedHash = expectedHash
    this.expectedSize = expectedSize
  }

  /** Bytes seen so far; the whole body once the stream has finished. */
  get bytes(): number {
    return this.#bytes
  }

  /** Hex SHA-256 of the bytes, once all of them have arrived (undefined before). */
  get digest(): string | undefined {
    return this.#digest
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    this.#bytes += chunk.length
    if (this.#bytes > this.expectedSize) {
      callback(
        new AppError('CHUNK_SIZE_MISMATCH', `chunk is larger than the declared ${this.expectedSize} bytes`, {
          expectedSize: this.expectedSize,
        }),
      )
      return
    }
    this.#hash.update(chunk)
    callback(null, chunk)
  }

  override _flush(callback: TransformCallback): void {
    const digest = this.#hash.digest('hex')
    this.#digest = digest
    if (this.#bytes !== this.expectedSize) {
      callback(
        new AppError(
          'CHUNK_SIZE_MISMATCH',
          `chunk has ${this.#bytes} bytes, not the declared ${this.expectedSize}`,
          { expectedSize: this.expectedSize, actualSize: this.#bytes },
        ),
      )
    } else if (digest !== this.expectedHash) {
      callback(
        new AppError('HASH_MISMATCH', 'chunk bytes do not match the declared SHA-256', {
          expectedHash: this.expectedHash,
          actualHash: digest,
        }),
      )
    } else {
      callback()
    }
  }
}

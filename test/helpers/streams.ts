import { Readable } from 'node:stream'
import { sha256Hex } from '../../src/domain/hashes.js'
import { VerifyingStream } from '../../src/services/verifying-stream.js'

/** All of a stream's bytes. */
export async function readAll(stream: Readable): Promise<Buffer> {
  const parts: Buffer[] = []
  for await (const part of stream) parts.push(Buffer.isBuffer(part) ? part : Buffer.from(part))
  return Buffer.concat(parts)
}

/**
 * Length and SHA-256 of some bytes: compare these rather than Buffers, which `toEqual` walks
 * byte by byte (seconds per MiB) and prints in full when they differ.
 */
export const fingerprint = (bytes: Buffer) => ({ length: bytes.length, sha256: sha256Hex(bytes) })

export interface Body extends Readable {
  /** True once the consumer has read every piece (the source ran to its end). */
  readonly fullyRead: boolean
}

/** A body that yields `data` in pieces of `pieceSize` bytes, as an HTTP request does. */
export function bodyOf(data: Buffer, pieceSize = 64 * 1024): Body {
  let offset = 0
  const body = new Readable({
    read() {
      if (offset >= data.length) {
        this.push(null)
        return
      }
      this.push(data.subarray(offset, offset + pieceSize))
      offset += pieceSize
    },
  })
  return Object.defineProperty(body, 'fullyRead', { get: () => body.readableEnded }) as Body
}

/** A body that yields `before` and then fails with `error`, like a dropped connection. */
export function failingBody(before: Buffer, error: Error): Readable {
  let sent = false
  return new Readable({
    read() {
      if (!sent) {
        sent = true
        this.push(before)
        return
      }
      // Fail asynchronously, once the consumer has taken the first bytes.
      setImmediate(() => this.destroy(error))
    },
  })
}

/** `data` piped through a VerifyingStream expecting `expected` (defaults: data's own hash and size). */
export function verifiedBody(
  data: Buffer,
  expected: { expectedHash: string; expectedSize?: number },
  pieceSize?: number,
): VerifyingStream {
  const verifying = new VerifyingStream({
    expectedHash: expected.expectedHash,
    expectedSize: expected.expectedSize ?? data.length,
  })
  return bodyOf(data, pieceSize).pipe(verifying)
}

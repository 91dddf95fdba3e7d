import type { FileHandle } from 'node:fs/promises'
import { Writable } from 'node:stream'

/**
 * A Writable that appends to an open FileHandle and leaves it open, so the caller can fsync and
 * close it itself once the stream has finished. (`FileHandle.createWriteStream({autoClose:
 * false})` keeps a reference on the handle that makes a later `handle.close()` wait forever, and
 * its `flush` option fsyncs on failure too.)
 *
 * Writes that are queued while one is in flight go out together in one `writev`.
 */
export class FileSink extends Writable {
  readonly #file: FileHandle

  constructor(file: FileHandle, highWaterMark: number) {
    super({ highWaterMark })
    this.#file = file
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: (error?: Error | null) => void): void {
    writeAll(this.#file, [chunk]).then(() => callback(), callback)
  }

  override _writev(
    chunks: Array<{ chunk: Buffer; encoding: BufferEncoding }>,
    callback: (error?: Error | null) => void,
  ): void {
    writeAll(
      this.#file,
      chunks.map(({ chunk }) => chunk),
    ).then(() => callback(), callback)
  }
}

/** Writes every byte, resuming after a short write (which regular files rarely do, but may). */
async function writeAll(file: FileHandle, buffers: Buffer[]): Promise<void> {
  let pending = buffers
  let remaining = pending.reduce((sum, buffer) => sum + buffer.length, 0)
  while (remaining > 0) {
    const { bytesWritten } = await file.writev(pending)
    if (bytesWritten <= 0) throw new Error('write to chunk file made no progress')
    remaining -= bytesWritten
    if (remaining > 0) pending = dropBytes(pending, bytesWritten)
  }
}

function dropBytes(buffers: Buffer[], count: number): Buffer[] {
  let skipped = count
  let index = 0
  while (index < buffers.length && skipped >= buffers[index]!.length) {
    skipped -= buffers[index]!.length
    index += 1
  }
  const rest = buffers.slice(index)
  if (rest.length > 0 && skipped > 0) rest[0] = rest[0]!.subarray(skipped)
  return rest
}

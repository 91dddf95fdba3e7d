import type { FileHandle } from 'node:fs/promises'
import { pipeline } from 'node:stream/promises'
import { describe, expect, it } from 'vitest'
import { bodyOf } from '../../../test/helpers/streams.js'
import { FileSink } from './file-sink.js'

/** A FileHandle that accepts at most `limit` bytes per writev, as a short write does. */
function shortWritingFile(limit: number, failAfter = Number.POSITIVE_INFINITY) {
  const written: Buffer[] = []
  let calls = 0
  const file = {
    async writev(buffers: Buffer[]) {
      calls += 1
      if (calls > failAfter) throw Object.assign(new Error('no space left on device'), { code: 'ENOSPC' })
      const accepted = Buffer.concat(buffers).subarray(0, limit)
      written.push(Buffer.from(accepted))
      return { bytesWritten: accepted.length, buffers }
    },
  }
  return { file: file as unknown as FileHandle, written, calls: () => calls }
}

describe('FileSink', () => {
  it('writes every byte in order across short writes', async () => {
    const data = Buffer.from(Array.from({ length: 10_000 }, (_, i) => i % 251))
    const { file, written } = shortWritingFile(777)
    await pipeline(bodyOf(data, 300), new FileSink(file, 4096))
    expect(Buffer.concat(written).equals(data)).toBe(true)
  })

  it('batches the writes queued behind one in flight', async () => {
    const data = Buffer.alloc(64 * 1024, 7)
    const { file, written, calls } = shortWritingFile(Number.POSITIVE_INFINITY)
    await pipeline(bodyOf(data, 1024), new FileSink(file, 1024 * 1024))
    expect(Buffer.concat(written).equals(data)).toBe(true)
    expect(calls()).toBeLessThan(64)
  })

  it('fails the stream with the write error', async () => {
    const { file } = shortWritingFile(100, 2)
    await expect(pipeline(bodyOf(Buffer.alloc(1000), 100), new FileSink(file, 4096))).rejects.toMatchObject({
      code: 'ENOSPC',
    })
  })
})

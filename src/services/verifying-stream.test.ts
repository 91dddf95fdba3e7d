import { randomBytes } from 'node:crypto'
import { Readable, Writable } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import { describe, expect, it } from 'vitest'
import { expectAppError } from '../../test/helpers/app-error.js'
import { sha256Hex } from '../domain/hashes.js'
import { VerifyingStream } from './verifying-stream.js'

/** Feeds `data` in `pieceSize` pieces through a VerifyingStream into a sink; returns what came out. */
async function verify(data: Buffer, stream: VerifyingStream, pieceSize = 64 * 1024): Promise<Buffer> {
  const out: Buffer[] = []
  const sink = new Writable({
    write(chunk: Buffer, _encoding, callback) {
      out.push(chunk)
      callback()
    },
  })
  await pipeline(Readable.from(pieces(data, pieceSize), { objectMode: false }), stream, sink)
  return Buffer.concat(out)
}

function* pieces(data: Buffer, pieceSize: number): Generator<Buffer> {
  for (let offset = 0; offset < data.length; offset += pieceSize) {
    yield data.subarray(offset, offset + pieceSize)
  }
}

describe('VerifyingStream', () => {
  it('passes matching bytes through and reports their digest and size', async () => {
    const data = randomBytes(3 * 1024 * 1024 + 17)
    const stream = new VerifyingStream({ expectedHash: sha256Hex(data), expectedSize: data.length })
    const out = await verify(data, stream)
    expect(out.equals(data)).toBe(true)
    expect(stream.digest).toBe(sha256Hex(data))
    expect(stream.bytes).toBe(data.length)
  })

  it('accepts an empty body with the hash of nothing', async () => {
    const stream = new VerifyingStream({ expectedHash: sha256Hex(''), expectedSize: 0 })
    const out = await verify(Buffer.alloc(0), stream)
    expect(out.length).toBe(0)
    expect(stream.digest).toBe(sha256Hex(''))
    expect(stream.bytes).toBe(0)
  })

  it('forwards the chunks it receives without copying them', async () => {
    const data = randomBytes(1000)
    const stream = new VerifyingStream({ expectedHash: sha256Hex(data), expectedSize: data.length })
    const seen: Buffer[] = []
    stream.on('data', (chunk: Buffer) => seen.push(chunk))
    const done = new Promise((resolve) => stream.on('end', resolve))
    stream.end(data)
    await done
    expect(seen).toHaveLength(1)
    expect(seen[0]?.buffer).toBe(data.buffer)
  })

  it('fails with HASH_MISMATCH at the end when the digest differs', async () => {
    const data = randomBytes(100_000)
    const stream = new VerifyingStream({ expectedHash: sha256Hex('other'), expectedSize: data.length })
    const error = await expectAppError(verify(data, stream), 'HASH_MISMATCH')
    expect(error.details).toMatchObject({ actualHash: sha256Hex(data) })
    expect(stream.digest).toBe(sha256Hex(data))
  })

  it('fails with CHUNK_SIZE_MISMATCH when fewer bytes than declared arrive', async () => {
    const data = randomBytes(1000)
    const stream = new VerifyingStream({ expectedHash: sha256Hex(data), expectedSize: 1001 })
    await expectAppError(verify(data, stream), 'CHUNK_SIZE_MISMATCH')
  })

  it('fails with CHUNK_SIZE_MISMATCH as soon as more bytes than declared arrive', async () => {
    const declared = randomBytes(100)
    const stream = new VerifyingStream({ expectedHash: sha256Hex(declared), expectedSize: 100 })
    let pulled = 0
    // An endless source: the stream must stop it rather than wait for an end that never comes.
    const endless = new Readable({
      read() {
        pulled += 1
        this.push(Buffer.alloc(64))
      },
    })
    const sink = new Writable({ write: (_chunk, _encoding, callback) => callback() })
    await expectAppError(pipeline(endless, stream, sink), 'CHUNK_SIZE_MISMATCH')
    expect(pulled).toBeLessThan(1000)
    expect(stream.digest).toBeUndefined()
  })

  it('reports a mismatch instead of an end to a consumer that reads it', async () => {
    const data = randomBytes(10)
    const stream = new VerifyingStream({ expectedHash: sha256Hex('x'), expectedSize: 10 })
    stream.end(data)
    let ended = false
    stream.on('end', () => {
      ended = true
    })
    const read = async () => {
      for await (const _ of stream) {
        // drain
      }
    }
    await expectAppError(read(), 'HASH_MISMATCH')
    expect(ended).toBe(false)
  })

  it('accepts string writes as their UTF-8 bytes', async () => {
    const stream = new VerifyingStream({ expectedHash: sha256Hex('héllo'), expectedSize: 6 })
    stream.resume()
    const done = new Promise((resolve, reject) => stream.on('end', resolve).on('error', reject))
    stream.end('héllo')
    await done
    expect(stream.digest).toBe(sha256Hex('héllo'))
  })

  it('rejects an impossible expected size', () => {
    expect(() => new VerifyingStream({ expectedHash: sha256Hex(''), expectedSize: -1 })).toThrow(RangeError)
    expect(() => new VerifyingStream({ expectedHash: sha256Hex(''), expectedSize: 1.5 })).toThrow(RangeError)
  })
})

import { createHash, createHmac, randomBytes } from 'node:crypto'
import { afterEach, describe, expect, it } from 'vitest'
import { Sha256Pool } from './sha256-pool.js'

const sha256 = (bytes: Buffer) => createHash('sha256').update(bytes).digest('hex')

describe('Sha256Pool.stream', () => {
  let pool: Sha256Pool
  afterEach(() => pool.close())

  it('hashes each of many interleaved streams right, whatever the sizes of their pieces', async () => {
    pool = new Sha256Pool(2)
    // Larger and smaller than the buffers the pool hands back to be filled again, in turn.
    const sizes = [1024 * 1024, 17, 3 * 1024 * 1024 + 5, 0, 64 * 1024, 1024 * 1024 - 1]
    const contents = Array.from({ length: 5 }, (_, stream) =>
      sizes.map((size, index) => randomBytes(sizes[(index + stream) % sizes.length] ?? size)),
    )
    const streams = contents.map(() => pool.stream())
    for (let round = 0; round < sizes.length; round++) {
      for (const [stream, pieces] of contents.entries()) streams[stream]?.update(pieces[round] as Buffer)
      // Lets the workers hand buffers back between rounds, so later copies reuse them.
      await new Promise((resolve) => setTimeout(resolve, 5))
    }
    const digests = await Promise.all(streams.map((stream) => stream.digest()))
    expect(digests).toEqual(
      contents.map((pieces) => ({
        hex: sha256(Buffer.concat(pieces)),
        size: pieces.reduce((sum, piece) => sum + piece.length, 0),
      })),
    )
  })

  it('hashes the bytes a piece had when given, though the caller reuses its buffer at once', async () => {
    pool = new Sha256Pool(1)
    const piece = randomBytes(256 * 1024)
    const original = Buffer.from(piece)
    const stream = pool.stream()
    stream.update(piece)
    piece.fill(0)
    stream.update(piece)
    expect((await stream.digest()).hex).toBe(sha256(Buffer.concat([original, piece])))
  })

  it('gives the HMAC with the digest when a key is given', async () => {
    pool = new Sha256Pool(1)
    const key = randomBytes(16)
    const bytes = randomBytes(2 * 1024 * 1024 + 3)
    const stream = pool.stream({ hmacKey: key })
    stream.update(bytes.subarray(0, 1024 * 1024))
    stream.update(bytes.subarray(1024 * 1024))
    expect(await stream.digest()).toEqual({
      hex: sha256(bytes),
      size: bytes.length,
      hmac: createHmac('sha256', key).update(bytes).digest('hex'),
    })
  })
})

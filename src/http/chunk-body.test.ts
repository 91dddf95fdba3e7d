import { PassThrough } from 'node:stream'
import { finished } from 'node:stream/promises'
import { describe, expect, it } from 'vitest'
import { ChunkBody } from './chunk-body.js'

describe('ChunkBody', () => {
  it('takes nothing from the request until read, then passes its bytes through', async () => {
    const request = new PassThrough()
    const body = new ChunkBody(request)
    request.end('chunk bytes')
    await new Promise((resolve) => setImmediate(resolve))
    expect(request.readableFlowing).not.toBe(true)
    const pieces: Buffer[] = []
    for await (const piece of body) pieces.push(piece as Buffer)
    expect(Buffer.concat(pieces).toString()).toBe('chunk bytes')
  })

  it('fails with CLIENT_CLOSED_REQUEST when the request is cut off before its end', async () => {
    const request = new PassThrough()
    const body = new ChunkBody(request)
    body.resume()
    request.write('half a chunk')
    request.destroy()
    await expect(finished(body)).rejects.toMatchObject({ code: 'CLIENT_CLOSED_REQUEST' })
  })

  it('passes on an error of the request (an idle timeout)', async () => {
    const request = new PassThrough()
    const body = new ChunkBody(request)
    body.resume()
    const timeout = Object.assign(new Error('idle'), { code: 'REQUEST_TIMEOUT' })
    request.destroy(timeout)
    await expect(finished(body)).rejects.toBe(timeout)
  })

  it('destroyed by its reader, lets the rest of the request be read and dropped, not destroyed', async () => {
    const request = new PassThrough({ highWaterMark: 4 })
    const body = new ChunkBody(request)
    body.once('data', () => body.destroy())
    request.write('first')
    await new Promise((resolve) => body.once('close', resolve))
    expect(request.destroyed).toBe(false)
    // The rest still goes somewhere: the writer is never held up, and the request ends normally.
    for (let i = 0; i < 100; i++) request.write('more bytes than any buffer holds')
    request.end()
    await finished(request)
    expect(request.readableEnded).toBe(true)
  })
})

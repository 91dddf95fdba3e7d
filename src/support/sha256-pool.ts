import os from 'node:os'
import { Worker } from 'node:worker_threads'

/**
 * The worker's code, as plain CommonJS so that it runs the same from TypeScript sources (tsx)
 * and from the compiled build, without a separate file to ship.
 */
const WORKER_SOURCE = `
const { parentPort } = require('node:worker_threads')
const { createHash, createHmac } = require('node:crypto')
// Streams being hashed piece by piece, by id.
const streams = new Map()
parentPort.on('message', ({ id, op, pieces, length, hmacKey }) => {
  let entry = streams.get(id)
  if (!entry) {
    const hmac = hmacKey ? createHmac('sha256', Buffer.from(hmacKey, 'hex')) : null
    entry = { hash: createHash('sha256'), hmac, size: 0 }
    streams.set(id, entry)
  }
  for (const piece of pieces) {
    // An update's one piece may be a spare buffer longer than the bytes it carries.
    const bytes = new Uint8Array(piece, 0, length ?? piece.byteLength)
    entry.hash.update(bytes)
    if (entry.hmac) entry.hmac.update(bytes)
    entry.size += bytes.byteLength
  }
  // Handed back to be filled again (Sha256Pool.#spare), rather than left to this thread's GC.
  if (op === 'update') return parentPort.postMessage({ spare: pieces[0] }, pieces)
  streams.delete(id)
  const hmac = entry.hmac ? entry.hmac.digest('hex') : undefined
  parentPort.postMessage({ id, hex: entry.hash.digest('hex'), size: entry.size, hmac })
})
`

/** What a worker computed: the SHA-256 and length, and the HMAC-SHA256 when a key was given. */
export interface Digest {
  hex: string
  size: number
  /** Hex; only for a stream opened with `hmacKey`. */
  hmac?: string
}

/** One SHA-256 computed on a worker as its pieces arrive (Sha256Pool.stream). */
export interface Sha256Stream {
  /** Hands a copy of `piece` to the worker: the caller may go on using it (send it, say). */
  update(piece: Buffer): void
  /** The digest and length of everything given to `update`. */
  digest(): Promise<Digest>
}

/** The size of a copy's buffer: a disk read's (DiskBlobStore's READ_HIGH_WATER_MARK). */
const SPARE_SIZE = 1024 * 1024
/** Spare buffers kept beyond this are left to the GC: enough for the pieces of a few streams in flight. */
const MAX_SPARE_BYTES = 16 * SPARE_SIZE

interface Pending {
  resolve(result: Digest): void
  reject(error: Error): void
}

/**
 * SHA-256 on worker threads. The main thread's `createHash` uses one core however many reads
 * are in flight; scrub re-hashes the whole store, so it hands whole chunks to these workers
 * and keeps reading meanwhile (bench/scrub.ts measures the difference), and downloads hash
 * what they send the same way (bench/download-verify.ts).
 */
export class Sha256Pool {
  readonly #workers: Worker[] = []
  readonly #pending = new Map<number, Pending>()
  /** Buffers the workers have hashed and handed back, for the next copies (#spareFor). */
  readonly #spares: ArrayBuffer[] = []
  #spareBytes = 0
  #next = 0
  #closed = false

  constructor(readonly size = Math.max(1, Math.min(4, os.availableParallelism()))) {}

  /**
   * The digest and length of `pieces` in order. The pieces are handed to the worker without a
   * copy when each fills its own ArrayBuffer, and must not be used by the caller afterwards.
   */
  digest(pieces: readonly Buffer[]): Promise<{ hex: string; size: number }> {
    if (this.#closed) return Promise.reject(new Error('the hash pool is closed'))
    const id = this.#next++
    const buffers = pieces.map((piece) =>
      piece.byteOffset === 0 && piece.byteLength === piece.buffer.byteLength
        ? (piece.buffer as ArrayBuffer)
        : piece.buffer.slice(piece.byteOffset, piece.byteOffset + piece.byteLength),
    )
    return this.#finish(id, buffers as ArrayBuffer[])
  }

  /**
   * A SHA-256 fed piece by piece, hashed on a worker while the caller goes on: a download
   * hashes what it sends on another core, paying only a copy of each piece here. With
   * `hmacKey`, the same bytes also go through an HMAC-SHA256 under that key (a proof of
   * possession checked against stored bytes).
   */
  stream(options: { hmacKey?: Buffer } = {}): Sha256Stream {
    const id = this.#next++
    // Sent with every message: the worker starts the stream on whichever reaches it first.
    const hmacKey = options.hmacKey?.toString('hex')
    // Every piece goes to one worker; should it die midway, the digest fails (a half-fed
    // replacement would answer a wrong hash, which would read as damaged bytes).
    const worker = this.#closed ? undefined : this.#worker(id % this.size)
    return {
      update: (piece) => {
        if (this.#closed || !worker) return
        // One copy into a buffer of its own, which then moves to the worker without another,
        // and comes back to be filled again.
        const copy = this.#spareFor(piece.length)
        new Uint8Array(copy).set(piece)
        worker.postMessage({ id, op: 'update', pieces: [copy], length: piece.length, hmacKey }, [copy])
      },
      digest: () => {
        if (this.#closed || !worker || this.#workers[id % this.size] !== worker) {
          return Promise.reject(new Error('the hash worker went away'))
        }
        return this.#finish(id, [], hmacKey)
      },
    }
  }

  /**
   * A buffer for a copy of `length` bytes: one the workers handed back when there is one large
   * enough. A download sends its bytes at hundreds of MiB/s; a new buffer for every copy left
   * that much garbage a second, which V8 collects only every few hundred MiB (issue 12).
   */
  #spareFor(length: number): ArrayBuffer {
    const spare = this.#spares.pop()
    if (spare !== undefined && spare.byteLength >= length) {
      this.#spareBytes -= spare.byteLength
      return spare
    }
    // Too small (the store reads in other sizes now): dropped, and a buffer of the usual size made.
    if (spare !== undefined) this.#spareBytes -= spare.byteLength
    return new ArrayBuffer(Math.max(length, SPARE_SIZE))
  }

  #keepSpare(spare: ArrayBuffer): void {
    if (this.#closed || this.#spareBytes + spare.byteLength > MAX_SPARE_BYTES) return
    this.#spares.push(spare)
    this.#spareBytes += spare.byteLength
  }

  #finish(id: number, buffers: ArrayBuffer[], hmacKey?: string): Promise<Digest> {
    const worker = this.#worker(id % this.size)
    return new Promise((resolve, reject) => {
      this.#pending.set(id, { resolve, reject })
      worker.postMessage({ id, op: 'digest', pieces: buffers, hmacKey }, buffers)
    })
  }

  async close(): Promise<void> {
    this.#closed = true
    this.#spares.length = 0
    await Promise.all(this.#workers.map((worker) => worker.terminate()))
    this.#workers.length = 0
  }

  #worker(slot: number): Worker {
    const existing = this.#workers[slot]
    if (existing) return existing
    const worker = new Worker(WORKER_SOURCE, { eval: true })
    // Idle workers must not keep the process alive.
    worker.unref()
    worker.on('message', ({ id, hex, size, hmac, spare }: Digest & { id: number; spare?: ArrayBuffer }) => {
      if (spare !== undefined) return this.#keepSpare(spare)
      this.#pending.get(id)?.resolve(hmac === undefined ? { hex, size } : { hex, size, hmac })
      this.#pending.delete(id)
    })
    // A dead worker fails what it was given; the next digest starts a new one in its slot.
    const fail = (error: Error) => {
      if (this.#workers[slot] === worker) this.#workers[slot] = undefined as unknown as Worker
      for (const [id, pending] of this.#pending) {
        if (id % this.size === slot) {
          pending.reject(error)
          this.#pending.delete(id)
        }
      }
    }
    worker.on('error', fail)
    worker.on('exit', (code) => fail(new Error(`hash worker exited with code ${code}`)))
    this.#workers[slot] = worker
    return worker
  }
}

import os from 'node:os'
import { Worker } from 'node:worker_threads'

/**
 * The worker's code, as plain CommonJS so that it runs the same from TypeScript sources (tsx)
 * and from the compiled build, without a separate file to ship.
 */
const WORKER_SOURCE = `
const { parentPort } = require('node:worker_threads')
const { createHash } = require('node:crypto')
parentPort.on('message', ({ id, pieces }) => {
  const hash = createHash('sha256')
  let size = 0
  for (const piece of pieces) {
    hash.update(new Uint8Array(piece))
    size += piece.byteLength
  }
  parentPort.postMessage({ id, hex: hash.digest('hex'), size })
})
`

interface Pending {
  resolve(result: { hex: string; size: number }): void
  reject(error: Error): void
}

/**
 * SHA-256 on worker threads. The main thread's `createHash` uses one core however many reads
 * are in flight; scrub re-hashes the whole store, so it hands whole chunks to these workers
 * and keeps reading meanwhile (bench/scrub.ts measures the difference).
 */
export class Sha256Pool {
  readonly #workers: Worker[] = []
  readonly #pending = new Map<number, Pending>()
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
    const worker = this.#worker(id % this.size)
    const buffers = pieces.map((piece) =>
      piece.byteOffset === 0 && piece.byteLength === piece.buffer.byteLength
        ? (piece.buffer as ArrayBuffer)
        : piece.buffer.slice(piece.byteOffset, piece.byteOffset + piece.byteLength),
    )
    return new Promise((resolve, reject) => {
      this.#pending.set(id, { resolve, reject })
      worker.postMessage({ id, pieces: buffers }, buffers as ArrayBuffer[])
    })
  }

  async close(): Promise<void> {
    this.#closed = true
    await Promise.all(this.#workers.map((worker) => worker.terminate()))
    this.#workers.length = 0
  }

  #worker(slot: number): Worker {
    const existing = this.#workers[slot]
    if (existing) return existing
    const worker = new Worker(WORKER_SOURCE, { eval: true })
    // Idle workers must not keep the process alive.
    worker.unref()
    worker.on('message', ({ id, hex, size }: { id: number; hex: string; size: number }) => {
      this.#pending.get(id)?.resolve({ hex, size })
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

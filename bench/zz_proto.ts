import { spawnSync } from 'node:child_process'
import { createHash, randomFillSync } from 'node:crypto'
import { mkdirSync, writeFileSync } from 'node:fs'
import { open, readFile } from 'node:fs/promises'
import path from 'node:path'
import { Worker } from 'node:worker_threads'
import { DiskBlobStore } from '../src/adapters/disk/disk-blob-store.js'

const root = '/tmp/scrubproto/chunks'
const N = 128,
  SIZE = 4 * 1024 * 1024
const blobs = new DiskBlobStore({ root })
const hashes: string[] = []
const buf = Buffer.allocUnsafe(SIZE)
for (let i = 0; i < N; i++) {
  randomFillSync(buf)
  const h = createHash('sha256').update(buf).digest('hex')
  hashes.push(h)
  const d = path.join(root, h.slice(0, 2), h.slice(2, 4))
  mkdirSync(d, { recursive: true })
  writeFileSync(path.join(d, h), buf)
}
const files = hashes.map((h) => path.join(root, h.slice(0, 2), h.slice(2, 4), h))
async function pool(conc: number, fn: (h: string) => Promise<void>) {
  let next = 0
  await Promise.all(
    Array.from({ length: conc }, async () => {
      while (next < N) await fn(hashes[next++]!)
    }),
  )
}
const code = `const { parentPort } = require('node:worker_threads'); const { createHash } = require('node:crypto');
parentPort.on('message', ({ id, pieces }) => { const h = createHash('sha256'); for (const p of pieces) h.update(new Uint8Array(p)); parentPort.postMessage({ id, digest: h.digest('hex') }) })`
const workers = [0, 1].map(() => {
  const w = new Worker(code, { eval: true })
  w.unref()
  return w
})
const waiting = new Map<number, (d: string) => void>()
let seq = 0
for (const w of workers)
  w.on('message', ({ id, digest }) => {
    waiting.get(id)!(digest)
    waiting.delete(id)
  })
function digestIn(pieces: Buffer[]): Promise<string> {
  const id = seq++
  const w = workers[id % workers.length]!
  return new Promise((res) => {
    waiting.set(id, res)
    const bufs = pieces.map((p) =>
      p.byteOffset === 0 && p.byteLength === p.buffer.byteLength
        ? p.buffer
        : p.buffer.slice(p.byteOffset, p.byteOffset + p.byteLength),
    )
    w.postMessage({ id, pieces: bufs }, bufs as ArrayBuffer[])
  })
}
const variants: Record<string, (h: string) => Promise<void>> = {
  main: async (h) => {
    const hash = createHash('sha256')
    for await (const p of (await blobs.get(h))!) hash.update(p as Buffer)
    if (hash.digest('hex') !== h) throw new Error('x')
  },
  workerRead: async (h) => {
    const b = await readFile(path.join(root, h.slice(0, 2), h.slice(2, 4), h))
    if ((await digestIn([b])) !== h) throw new Error('z')
  },
  mainRead: async (h) => {
    const b = await readFile(path.join(root, h.slice(0, 2), h.slice(2, 4), h))
    if (createHash('sha256').update(b).digest('hex') !== h) throw new Error('z')
  },
  workerOpen1M: async (h) => {
    const fh = await open(path.join(root, h.slice(0, 2), h.slice(2, 4), h))
    const pieces: Buffer[] = []
    try {
      for (;;) {
        const b = Buffer.allocUnsafe(1 << 20)
        const { bytesRead } = await fh.read(b, 0, b.length, null)
        if (!bytesRead) break
        pieces.push(b.subarray(0, bytesRead))
      }
    } finally {
      await fh.close()
    }
    if ((await digestIn(pieces)) !== h) throw new Error('z')
  },
  worker: async (h) => {
    const pieces: Buffer[] = []
    for await (const p of (await blobs.get(h))!) pieces.push(p as Buffer)
    if ((await digestIn(pieces)) !== h) throw new Error('z')
  },
}
for (let round = 0; round < 3; round++) {
  const r = spawnSync(
    'bash',
    [
      '-c',
      `TIMEFORMAT='%R %U %S'; time (printf '%s\\0' ${files.join(' ')} | xargs -0 -P 4 -n 32 openssl dgst -sha256 > /dev/null)`,
    ],
    { encoding: 'utf8' },
  )
  const [real] = r.stderr.trim().split(/\s+/).map(Number)
  console.log('openssl -P4', ((N * 4) / real!).toFixed(0), 'MiB/s')
  for (const [name, fn] of Object.entries(variants)) {
    const t = performance.now()
    await pool(4, fn)
    console.log(name, ((N * 4) / ((performance.now() - t) / 1000)).toFixed(0), 'MiB/s')
  }
}
process.exit(0)

import { randomBytes, randomUUID } from 'node:crypto'
import { once } from 'node:events'
import { mkdir, mkdtemp, readdir, readFile, rm, stat, utimes, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { basename, join } from 'node:path'
import { PassThrough } from 'node:stream'
import { afterAll, beforeEach, describe, expect, it } from 'vitest'
import { blobStoreContract } from '../../../test/contract/blob-store.contract.js'
import { bodyOf, failingBody, fingerprint, readAll, verifiedBody } from '../../../test/helpers/streams.js'
import { type BlobKey, blobName, LEGACY_GENERATION, newGeneration } from '../../domain/blob-key.js'
import { MiB } from '../../domain/chunk-plan.js'
import { sha256Hex } from '../../domain/hashes.js'
import type { BlobStore } from '../../ports/blob-store.js'
import { VerifyingStream } from '../../services/verifying-stream.js'
import { DiskBlobStore } from './disk-blob-store.js'

const scratch = await mkdtemp(join(tmpdir(), 'tessera-disk-blob-store-'))
afterAll(() => rm(scratch, { recursive: true, force: true }))

let stores = 0
/** A store in a fresh root; `init()` not called, as a put must work without it. */
const freshStore = () => new DiskBlobStore({ root: join(scratch, `store-${++stores}`, 'blobs') })

const chunk = (size: number) => {
  const data = randomBytes(size)
  const hash = sha256Hex(data)
  return { data, hash, key: { hash, generation: newGeneration() } as BlobKey }
}

/** Where the store keeps a copy: root/ab/cd/<hash>.<generation> (root/ab/cd/<hash> for a legacy one). */
const pathIn = (root: string, key: BlobKey) =>
  join(root, key.hash.slice(0, 2), key.hash.slice(2, 4), blobName(key))

/** A temp file as a put that never finished leaves it (`tmp/<name>.<uuid>`), last written at `at`. */
async function abandonWrite(store: BlobStore, at: number): Promise<string> {
  const disk = store as DiskBlobStore
  // Before the file is made: init() removes temp files older than staleTempAgeMs itself.
  await disk.init()
  const { key } = chunk(10)
  const path = join(disk.root, 'tmp', `${blobName(key)}.${randomUUID()}`)
  await writeFile(path, 'half a chunk')
  await utimes(path, new Date(at), new Date(at))
  return path
}

const fileExists = (path: string) =>
  stat(path).then(
    () => true,
    () => false,
  )

const openFds = () => readdir('/proc/self/fd').then((fds) => fds.length)

const listAll = async (store: DiskBlobStore) => {
  const keys: BlobKey[] = []
  for await (const { hash, generation } of store.list()) keys.push({ hash, generation })
  return keys
}

describe('DiskBlobStore', () => {
  blobStoreContract(async () => freshStore(), {
    abandonWrite: async (store, at) => {
      await abandonWrite(store, at)
    },
  })

  describe('on disk', () => {
    let store: DiskBlobStore

    beforeEach(() => {
      store = freshStore()
    })

    const tempFiles = () => readdir(join(store.root, 'tmp'))

    it('lays copies out as root/ab/cd/<hash>.<generation>, and a legacy one as root/ab/cd/<hash>', async () => {
      const { data, hash, key } = chunk(1000)
      const legacy = { hash, generation: LEGACY_GENERATION }
      await store.put(key, bodyOf(data))
      await store.put(legacy, bodyOf(data))
      const fanout = join(store.root, hash.slice(0, 2), hash.slice(2, 4))
      expect(pathIn(store.root, key)).toBe(join(fanout, `${hash}.${key.generation}`))
      expect(key.generation).toMatch(/^[0-9a-f]{16}$/)
      expect(fingerprint(await readFile(join(fanout, `${hash}.${key.generation}`)))).toEqual(
        fingerprint(data),
      )
      expect(fingerprint(await readFile(join(fanout, hash)))).toEqual(fingerprint(data))
      expect((await readdir(fanout)).sort()).toEqual([hash, `${hash}.${key.generation}`].sort())
      expect((await readdir(store.root)).sort()).toEqual([hash.slice(0, 2), 'tmp'].sort())
    })

    it('finds a copy stored before generations (a bare-hash file) as the legacy generation', async () => {
      const { data, hash } = chunk(500)
      const legacy = { hash, generation: LEGACY_GENERATION }
      await store.init()
      await mkdir(join(store.root, hash.slice(0, 2), hash.slice(2, 4)), { recursive: true })
      await writeFile(pathIn(store.root, legacy), data)
      expect(await listAll(store)).toEqual([legacy])
      expect(fingerprint(await readAll((await store.get(legacy))!))).toEqual(fingerprint(data))
      expect(await store.has({ hash, generation: newGeneration() })).toBe(false)
      await store.delete(legacy)
      expect(await listAll(store)).toEqual([])
    })

    it('leaves no temp file after a put, whether it succeeds or fails', async () => {
      const { data, hash, key } = chunk(2 * MiB)
      const before = await openFds()
      await expect(
        store.put(key, verifiedBody(randomBytes(2 * MiB), { expectedHash: hash })),
      ).rejects.toMatchObject({ code: 'HASH_MISMATCH' })
      await expect(store.put(key, failingBody(data.subarray(0, MiB), new Error('reset')))).rejects.toThrow(
        'reset',
      )
      expect(await tempFiles()).toEqual([])
      await store.put(key, verifiedBody(data, { expectedHash: hash }))
      await store.put(key, verifiedBody(data, { expectedHash: hash }))
      await store.put({ hash, generation: newGeneration() }, verifiedBody(data, { expectedHash: hash }))
      expect(await tempFiles()).toEqual([])
      expect(await openFds()).toBe(before)
    })

    it('never rewrites a stored copy, and a put of another generation leaves it as it was', async () => {
      const { data, hash, key } = chunk(1000)
      await store.put(key, bodyOf(data))
      const path = pathIn(store.root, key)
      const first = await stat(path)
      await store.put(key, bodyOf(data))
      await Promise.all([store.put(key, bodyOf(data)), store.put(key, bodyOf(data))])
      const other = { hash, generation: newGeneration() }
      await store.put(other, bodyOf(data))
      const after = await stat(path)
      expect(after.ino).toBe(first.ino)
      expect(after.mtimeMs).toBe(first.mtimeMs)
      expect((await stat(pathIn(store.root, other))).ino).not.toBe(first.ino)
    })

    it('throws, not null, when the chunk path is not a readable file', async () => {
      const { key } = chunk(10)
      await mkdir(pathIn(store.root, key), { recursive: true })
      const before = await openFds()
      await expect(store.get(key)).rejects.toMatchObject({ code: 'EISDIR' })
      await expect(store.has(key)).rejects.toMatchObject({ code: 'EISDIR' })
      await expect(store.stat(key)).rejects.toMatchObject({ code: 'EISDIR' })
      await expect(listAll(store)).rejects.toMatchObject({ code: 'EISDIR' })
      expect(await openFds()).toBe(before)
    })

    it('throws, not null, when a fan-out directory is not a directory', async () => {
      const { hash, key } = chunk(10)
      await mkdir(store.root, { recursive: true })
      await writeFile(join(store.root, hash.slice(0, 2)), 'not a directory')
      await expect(store.get(key)).rejects.toMatchObject({ code: 'ENOTDIR' })
      await expect(store.has(key)).rejects.toMatchObject({ code: 'ENOTDIR' })
      await expect(store.stat(key)).rejects.toMatchObject({ code: 'ENOTDIR' })
      await expect(listAll(store)).rejects.toMatchObject({ code: 'ENOTDIR' })
    })

    it('lists only chunks: not temp files, strays, or hashes filed under the wrong prefix', async () => {
      const { data, hash, key } = chunk(100)
      await store.put(key, bodyOf(data))
      // A valid hash in this chunk's directory, but not one whose prefix names it.
      const misfiled = `${hash[0] === '0' ? '1' : '0'}${hash.slice(1)}`
      const fanout = join(hash.slice(0, 2), hash.slice(2, 4))
      const strays = [
        join('tmp', hash),
        join('tmp', `${misfiled}.${'0'.repeat(8)}`),
        join('tmp', `${hash}.${newGeneration()}.${randomUUID()}`),
        join('zz', hash.slice(2, 4), hash),
        join('zz', hash.slice(2, 4), `${hash}.${key.generation}`),
        join(hash.slice(0, 2), 'xyz', hash),
        join(fanout, 'not-a-hash'),
        join(fanout, `${hash}.part`),
        join(fanout, `${hash}.`),
        join(fanout, `${hash}.${key.generation.toUpperCase()}`),
        join(fanout, `${hash}.${key.generation}0`),
        join(fanout, `${hash}.${key.generation.slice(1)}`),
        join(fanout, `${hash}.${key.generation}.${key.generation}`),
        join(fanout, misfiled),
        join(fanout, `${misfiled}.${key.generation}`),
        'README',
      ]
      for (const stray of strays) {
        await mkdir(join(store.root, stray, '..'), { recursive: true })
        await writeFile(join(store.root, stray), 'not a chunk')
      }
      expect(await listAll(store)).toEqual([key])
    })

    it('touches nothing outside the root for a malicious hash or generation', async () => {
      await store.init()
      const parent = join(store.root, '..')
      const before = await readdir(parent)
      const { hash } = chunk(1)
      for (const key of [
        { hash: '../x', generation: newGeneration() },
        { hash, generation: '../../../../x' },
        { hash: '../../blobs', generation: LEGACY_GENERATION },
      ]) {
        await expect(store.put(key, bodyOf(Buffer.from('x')))).rejects.toMatchObject({
          code: 'INVALID_REQUEST',
        })
        await expect(store.delete(key)).rejects.toMatchObject({ code: 'INVALID_REQUEST' })
      }
      expect(await readdir(parent)).toEqual(before)
      expect((await stat(store.root)).isDirectory()).toBe(true)
      expect(await listAll(store)).toEqual([])
    })

    it('closes the file when a reader stops early', async () => {
      const { data, key } = chunk(4 * MiB)
      await store.put(key, bodyOf(data))
      const before = await openFds()
      const body = await store.get(key)
      body!.destroy()
      await once(body!, 'close')
      const ranged = await store.get(key, { start: 10, end: 20 })
      expect(fingerprint(await readAll(ranged!))).toEqual(fingerprint(data.subarray(10, 21)))
      expect(await openFds()).toBe(before)
    })

    it('rejects an inverted range without leaking the file', async () => {
      const { data, key } = chunk(100)
      await store.put(key, bodyOf(data))
      const before = await openFds()
      await expect(store.get(key, { start: 20, end: 10 })).rejects.toThrow(RangeError)
      expect(await openFds()).toBe(before)
    })

    it('removes stale temp files at init and keeps recent ones', async () => {
      const root = join(scratch, `store-${++stores}`)
      await mkdir(join(root, 'tmp'), { recursive: true })
      const stale = join(root, 'tmp', 'stale')
      const recent = join(root, 'tmp', 'recent')
      await writeFile(stale, 'left by a crash')
      await writeFile(recent, 'a put in another process')
      const twoHoursAgo = new Date(Date.now() - 2 * 60 * 60 * 1000)
      await utimes(stale, twoHoursAgo, twoHoursAgo)
      await new DiskBlobStore({ root }).init()
      expect(await readdir(join(root, 'tmp'))).toEqual(['recent'])
    })

    it('removeAbandonedWrites removes temp files last written before the cutoff, and keeps younger ones', async () => {
      const { data, key } = chunk(100)
      await store.put(key, bodyOf(data))
      const now = Date.now()
      const old = await abandonWrite(store, now - 10 * 60_000)
      const young = await abandonWrite(store, now - 1000)
      // staleTempAgeMs (an hour) is only init's own cutoff: the caller's is the one that counts.
      expect(await store.removeAbandonedWrites(now - 5 * 60_000)).toBe(1)
      expect(await tempFiles()).toEqual([basename(young)])
      expect(await fileExists(old)).toBe(false)
      expect(await store.removeAbandonedWrites(now)).toBe(1)
      expect(await tempFiles()).toEqual([])
      expect(await listAll(store)).toEqual([key])
    })

    it('removeAbandonedWrites leaves a put in progress alone, and the put completes', async () => {
      const { data, hash, key } = chunk(2 * MiB)
      const body = new PassThrough()
      const putting = store.put(
        key,
        body.pipe(new VerifyingStream({ expectedHash: hash, expectedSize: data.length })),
      )
      body.write(data.subarray(0, MiB))
      const deadline = Date.now() + 10_000
      while ((await tempFiles().catch(() => [])).length === 0) {
        if (Date.now() > deadline) throw new Error('the put never started writing')
        await new Promise((resolve) => setTimeout(resolve, 10))
      }
      // The put began after this cutoff: its temp file is younger, whoever runs the cleanup.
      expect(await store.removeAbandonedWrites(Date.now() - 1000)).toBe(0)
      expect(await tempFiles()).toHaveLength(1)
      body.end(data.subarray(MiB))
      await putting
      expect(fingerprint(await readAll((await store.get(key))!))).toEqual(fingerprint(data))
      expect(await tempFiles()).toEqual([])
    })

    it('creates a missing root on init, and ping fails once it is gone', async () => {
      await store.init()
      expect((await readdir(store.root)).sort()).toEqual(['tmp'])
      await store.ping()
      await rm(store.root, { recursive: true })
      await expect(store.ping()).rejects.toMatchObject({ code: 'ENOENT' })
    })
  })
})

import { randomBytes } from 'node:crypto'
import { once } from 'node:events'
import { mkdir, mkdtemp, readdir, readFile, rm, stat, utimes, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeEach, describe, expect, it } from 'vitest'
import { blobStoreContract } from '../../../test/contract/blob-store.contract.js'
import { bodyOf, failingBody, fingerprint, readAll, verifiedBody } from '../../../test/helpers/streams.js'
import { MiB } from '../../domain/chunk-plan.js'
import { sha256Hex } from '../../domain/hashes.js'
import { DiskBlobStore } from './disk-blob-store.js'

const scratch = await mkdtemp(join(tmpdir(), 'tessera-disk-blob-store-'))
afterAll(() => rm(scratch, { recursive: true, force: true }))

let stores = 0
/** A store in a fresh root; `init()` not called, as a put must work without it. */
const freshStore = () => new DiskBlobStore({ root: join(scratch, `store-${++stores}`, 'blobs') })

const chunk = (size: number) => {
  const data = randomBytes(size)
  return { data, hash: sha256Hex(data) }
}

const openFds = () => readdir('/proc/self/fd').then((fds) => fds.length)

const listAll = async (store: DiskBlobStore) => {
  const hashes: string[] = []
  for await (const { hash } of store.list()) hashes.push(hash)
  return hashes
}

describe('DiskBlobStore', () => {
  blobStoreContract(async () => freshStore())

  describe('on disk', () => {
    let store: DiskBlobStore

    beforeEach(() => {
      store = freshStore()
    })

    const tempFiles = () => readdir(join(store.root, 'tmp'))

    it('lays chunks out as root/ab/cd/<hash>', async () => {
      const { data, hash } = chunk(1000)
      await store.put(hash, bodyOf(data))
      const path = join(store.root, hash.slice(0, 2), hash.slice(2, 4), hash)
      expect(fingerprint(await readFile(path))).toEqual(fingerprint(data))
      expect((await readdir(store.root)).sort()).toEqual([hash.slice(0, 2), 'tmp'].sort())
    })

    it('leaves no temp file after a put, whether it succeeds or fails', async () => {
      const { data, hash } = chunk(2 * MiB)
      const before = await openFds()
      await expect(
        store.put(hash, verifiedBody(randomBytes(2 * MiB), { expectedHash: hash })),
      ).rejects.toMatchObject({ code: 'HASH_MISMATCH' })
      await expect(store.put(hash, failingBody(data.subarray(0, MiB), new Error('reset')))).rejects.toThrow(
        'reset',
      )
      expect(await tempFiles()).toEqual([])
      await store.put(hash, verifiedBody(data, { expectedHash: hash }))
      await store.put(hash, verifiedBody(data, { expectedHash: hash }))
      expect(await tempFiles()).toEqual([])
      expect(await openFds()).toBe(before)
    })

    it('never rewrites a stored chunk', async () => {
      const { data, hash } = chunk(1000)
      await store.put(hash, bodyOf(data))
      const path = join(store.root, hash.slice(0, 2), hash.slice(2, 4), hash)
      const first = await stat(path)
      await store.put(hash, bodyOf(data))
      await Promise.all([store.put(hash, bodyOf(data)), store.put(hash, bodyOf(data))])
      const after = await stat(path)
      expect(after.ino).toBe(first.ino)
      expect(after.mtimeMs).toBe(first.mtimeMs)
    })

    it('throws, not null, when the chunk path is not a readable file', async () => {
      const { hash } = chunk(10)
      await mkdir(join(store.root, hash.slice(0, 2), hash.slice(2, 4), hash), { recursive: true })
      const before = await openFds()
      await expect(store.get(hash)).rejects.toMatchObject({ code: 'EISDIR' })
      await expect(store.has(hash)).rejects.toMatchObject({ code: 'EISDIR' })
      await expect(store.stat(hash)).rejects.toMatchObject({ code: 'EISDIR' })
      await expect(listAll(store)).rejects.toMatchObject({ code: 'EISDIR' })
      expect(await openFds()).toBe(before)
    })

    it('throws, not null, when a fan-out directory is not a directory', async () => {
      const { hash } = chunk(10)
      await mkdir(store.root, { recursive: true })
      await writeFile(join(store.root, hash.slice(0, 2)), 'not a directory')
      await expect(store.get(hash)).rejects.toMatchObject({ code: 'ENOTDIR' })
      await expect(store.has(hash)).rejects.toMatchObject({ code: 'ENOTDIR' })
      await expect(store.stat(hash)).rejects.toMatchObject({ code: 'ENOTDIR' })
      await expect(listAll(store)).rejects.toMatchObject({ code: 'ENOTDIR' })
    })

    it('lists only chunks: not temp files, strays, or hashes filed under the wrong prefix', async () => {
      const { data, hash } = chunk(100)
      await store.put(hash, bodyOf(data))
      // A valid hash in this chunk's directory, but not one whose prefix names it.
      const misfiled = `${hash[0] === '0' ? '1' : '0'}${hash.slice(1)}`
      const strays = [
        join('tmp', hash),
        join('tmp', `${misfiled}.${'0'.repeat(8)}`),
        join('zz', hash.slice(2, 4), hash),
        join(hash.slice(0, 2), 'xyz', hash),
        join(hash.slice(0, 2), hash.slice(2, 4), 'not-a-hash'),
        join(hash.slice(0, 2), hash.slice(2, 4), `${hash}.part`),
        join(hash.slice(0, 2), hash.slice(2, 4), misfiled),
        'README',
      ]
      for (const stray of strays) {
        await mkdir(join(store.root, stray, '..'), { recursive: true })
        await writeFile(join(store.root, stray), 'not a chunk')
      }
      expect(await listAll(store)).toEqual([hash])
    })

    it('touches nothing outside the root for a malicious hash', async () => {
      await store.init()
      const parent = join(store.root, '..')
      const before = await readdir(parent)
      await expect(store.put('../x', bodyOf(Buffer.from('x')))).rejects.toMatchObject({
        code: 'INVALID_REQUEST',
      })
      await expect(store.delete('../../blobs')).rejects.toMatchObject({ code: 'INVALID_REQUEST' })
      expect(await readdir(parent)).toEqual(before)
      expect((await stat(store.root)).isDirectory()).toBe(true)
    })

    it('closes the file when a reader stops early', async () => {
      const { data, hash } = chunk(4 * MiB)
      await store.put(hash, bodyOf(data))
      const before = await openFds()
      const body = await store.get(hash)
      body!.destroy()
      await once(body!, 'close')
      const ranged = await store.get(hash, { start: 10, end: 20 })
      expect(fingerprint(await readAll(ranged!))).toEqual(fingerprint(data.subarray(10, 21)))
      expect(await openFds()).toBe(before)
    })

    it('rejects an inverted range without leaking the file', async () => {
      const { data, hash } = chunk(100)
      await store.put(hash, bodyOf(data))
      const before = await openFds()
      await expect(store.get(hash, { start: 20, end: 10 })).rejects.toThrow(RangeError)
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

    it('creates a missing root on init, and ping fails once it is gone', async () => {
      await store.init()
      expect((await readdir(store.root)).sort()).toEqual(['tmp'])
      await store.ping()
      await rm(store.root, { recursive: true })
      await expect(store.ping()).rejects.toMatchObject({ code: 'ENOENT' })
    })
  })
})

import { randomBytes } from 'node:crypto'
import type { Stats } from 'node:fs'
import { type FileHandle, mkdtemp, readdir, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join, sep } from 'node:path'
import { afterAll, beforeEach, describe, expect, it } from 'vitest'
import { bodyOf, fingerprint, readAll } from '../../../test/helpers/streams.js'
import { type BlobKey, blobName, newGeneration } from '../../domain/blob-key.js'
import { MiB } from '../../domain/chunk-plan.js'
import { sha256Hex } from '../../domain/hashes.js'
import { DiskBlobStore } from './disk-blob-store.js'
import { type DiskFileSystem, nodeFileSystem } from './disk-file-system.js'

/** What a call did: a path operation, or (`fd…`) one on a handle opened at `path`. */
type Operation =
  | 'open'
  | 'link'
  | 'mkdir'
  | 'unlink'
  | 'stat'
  | 'lstat'
  | 'readdir'
  | 'access'
  | 'fd.write'
  | 'fd.writev'
  | 'fd.read'
  | 'fd.stat'
  | 'fd.sync'
  | 'fd.close'

interface Call {
  operation: Operation
  path: string
}

/** FileHandle methods that touch the disk, and how calls to them are recorded. */
const HANDLE_OPERATIONS: Partial<Record<string | symbol, Operation>> = {
  write: 'fd.write',
  writev: 'fd.writev',
  read: 'fd.read',
  stat: 'fd.stat',
  sync: 'fd.sync',
  close: 'fd.close',
}

/**
 * node:fs/promises, recording every call and failing the ones `failWith` picks with an errno
 * error, as a sick disk does. Handles are the real ones behind a Proxy, so that Node's own
 * streams over them (get's createReadStream) call the faulty methods too.
 */
class FaultyFileSystem implements DiskFileSystem {
  readonly calls: Call[] = []
  /** The errno code a call fails with, or undefined to let it through. */
  failWith: (call: Call) => string | undefined = () => undefined

  heal(): void {
    this.failWith = () => undefined
  }

  count(operation: Operation, path?: string): number {
    return this.calls.filter(
      (call) => call.operation === operation && (path === undefined || call.path === path),
    ).length
  }

  async open(path: string, flags: string): Promise<FileHandle> {
    this.#enter('open', path)
    return this.#faultyHandle(await nodeFileSystem.open(path, flags), path)
  }

  async link(existingPath: string, newPath: string): Promise<void> {
    this.#enter('link', newPath)
    return nodeFileSystem.link(existingPath, newPath)
  }

  async mkdir(path: string, options: { recursive: true }): Promise<string | undefined> {
    this.#enter('mkdir', path)
    return nodeFileSystem.mkdir(path, options)
  }

  async unlink(path: string): Promise<void> {
    this.#enter('unlink', path)
    return nodeFileSystem.unlink(path)
  }

  async stat(path: string): Promise<Stats> {
    this.#enter('stat', path)
    return nodeFileSystem.stat(path)
  }

  async lstat(path: string): Promise<Stats> {
    this.#enter('lstat', path)
    return nodeFileSystem.lstat(path)
  }

  async readdir(path: string): Promise<string[]> {
    this.#enter('readdir', path)
    return nodeFileSystem.readdir(path)
  }

  async access(path: string, mode: number): Promise<void> {
    this.#enter('access', path)
    return nodeFileSystem.access(path, mode)
  }

  #enter(operation: Operation, path: string): void {
    const call = { operation, path }
    this.calls.push(call)
    const code = this.failWith(call)
    if (code !== undefined) throw injectedFault(code, call)
  }

  #faultyHandle(handle: FileHandle, path: string): FileHandle {
    return new Proxy(handle, {
      get: (target, property, receiver) => {
        const value: unknown = Reflect.get(target, property, receiver)
        const operation = HANDLE_OPERATIONS[property]
        if (operation === undefined || typeof value !== 'function') return value
        return async (...args: unknown[]) => {
          this.#enter(operation, path)
          return value.apply(receiver, args)
        }
      },
    })
  }
}

function injectedFault(code: string, { operation, path }: Call): NodeJS.ErrnoException {
  return Object.assign(new Error(`${code}: injected fault, ${operation} '${path}'`), {
    code,
    syscall: operation,
    path,
  })
}

const scratch = await mkdtemp(join(tmpdir(), 'tessera-disk-faults-'))
afterAll(() => rm(scratch, { recursive: true, force: true }))

const chunk = (size: number) => {
  const data = randomBytes(size)
  const hash = sha256Hex(data)
  return { data, hash, key: { hash, generation: newGeneration() } as BlobKey }
}

/** Two chunks in different top-level fan-out directories. */
function chunksInTwoFanouts() {
  const first = chunk(1000)
  let second = chunk(2000)
  while (second.hash.slice(0, 2) === first.hash.slice(0, 2)) second = chunk(2000)
  return [first, second] as const
}

const openFds = () => readdir('/proc/self/fd').then((fds) => fds.length)

const listAll = async (store: DiskBlobStore) => {
  const hashes: string[] = []
  for await (const { hash } of store.list()) hashes.push(hash)
  return hashes
}

const bytesOf = async (store: DiskBlobStore, key: BlobKey) => {
  const body = await store.get(key)
  return body === null ? null : fingerprint(await readAll(body))
}

let fileSystem: FaultyFileSystem
let store: DiskBlobStore

beforeEach(async () => {
  fileSystem = new FaultyFileSystem()
  store = new DiskBlobStore({ root: join(scratch, `store-${randomBytes(6).toString('hex')}`), fileSystem })
  await store.init()
})

const tempDir = () => join(store.root, 'tmp')
const isTempFile = (path: string) => path.startsWith(tempDir() + sep)
const fanoutDirOf = (hash: string) => join(store.root, hash.slice(0, 2), hash.slice(2, 4))
const pathOf = (key: BlobKey) => join(fanoutDirOf(key.hash), blobName(key))

describe('DiskBlobStore on a failing disk', () => {
  describe('put', () => {
    /**
     * A put that the disk failed: it reports the disk's own error (its code is what the HTTP
     * layer answers by: ENOSPC is 507, EIO 500), leaves nothing under the hash and no temp file,
     * and a later put of the same chunk on a healthy disk works. Answers the failed put's calls.
     */
    async function expectFailedPutLeavesNothing(code: string, failWith: FaultyFileSystem['failWith']) {
      const bystander = chunk(100)
      await store.put(bystander.key, bodyOf(bystander.data))
      const { data, key } = chunk(2 * MiB)
      const fds = await openFds()
      fileSystem.failWith = failWith
      fileSystem.calls.length = 0

      await expect(store.put(key, bodyOf(data))).rejects.toMatchObject({ code })
      const failedPutCalls = [...fileSystem.calls]

      expect(await store.has(key)).toBe(false)
      expect(await store.get(key)).toBeNull()
      expect(await store.stat(key)).toBeNull()
      expect(await listAll(store)).toEqual([bystander.hash])
      expect(await readdir(tempDir())).toEqual([])
      expect(await openFds()).toBe(fds)

      fileSystem.heal()
      await store.put(key, bodyOf(data))
      expect(await bytesOf(store, key)).toEqual(fingerprint(data))
      return failedPutCalls
    }

    it.each(['EIO', 'ENOSPC'])('rejects with %s when writing the temp file fails', async (code) => {
      const calls = await expectFailedPutLeavesNothing(code, ({ operation, path }) =>
        (operation === 'fd.write' || operation === 'fd.writev') && isTempFile(path) ? code : undefined,
      )
      expect(calls.filter(({ operation }) => operation === 'fd.sync' || operation === 'link')).toEqual([])
    })

    it.each(['EIO', 'ENOSPC'])(
      'rejects with %s when fsyncing the temp file fails, without retrying the fsync or linking',
      async (code) => {
        const calls = await expectFailedPutLeavesNothing(code, ({ operation, path }) =>
          operation === 'fd.sync' && isTempFile(path) ? code : undefined,
        )
        const syncs = calls.filter(({ operation }) => operation === 'fd.sync')
        expect(syncs).toHaveLength(1)
        expect(isTempFile(syncs[0]!.path)).toBe(true)
        expect(calls.filter(({ operation }) => operation === 'link')).toEqual([])
      },
    )

    it('reports the disk error, not a failure to remove the temp file after it', async () => {
      fileSystem.failWith = ({ operation, path }) => {
        if (!isTempFile(path)) return undefined
        if (operation === 'fd.writev' || operation === 'fd.write') return 'ENOSPC'
        return operation === 'unlink' ? 'EIO' : undefined
      }
      const { data, key } = chunk(MiB)
      await expect(store.put(key, bodyOf(data))).rejects.toMatchObject({ code: 'ENOSPC' })
      expect(fileSystem.count('unlink')).toBe(1)
      expect(await store.has(key)).toBe(false)
    })

    it('rejects when fsyncing the directory after the link fails, and never exposes a partial chunk', async () => {
      const { data, hash, key } = chunk(4 * MiB)
      fileSystem.failWith = ({ operation, path }) =>
        operation === 'fd.sync' && path === fanoutDirOf(hash) ? 'EIO' : undefined

      await expect(store.put(key, bodyOf(data))).rejects.toMatchObject({ code: 'EIO' })

      // The put is not acknowledged, but the link was made: the name exists, and a power cut now
      // could still lose it, since the directory entry was never made durable. What it names is
      // whole either way, because the temp file was fsynced before it was linked. (No power was
      // lost here, so the chunk is present; after a real power cut it might be absent, never
      // partial.) The temp file was removed before the directory fsync.
      expect(await bytesOf(store, key)).toEqual(fingerprint(data))
      expect(await readdir(tempDir())).toEqual([])

      // Retrying the put is how the client makes it durable: the existing name is fsynced.
      fileSystem.heal()
      const syncsBefore = fileSystem.count('fd.sync', fanoutDirOf(hash))
      await store.put(key, bodyOf(data))
      expect(fileSystem.count('fd.sync', fanoutDirOf(hash))).toBe(syncsBefore + 1)
      expect(await bytesOf(store, key)).toEqual(fingerprint(data))
    })
  })

  describe('reads error, never answer "missing"', () => {
    const { data, key } = chunk(3 * MiB)

    beforeEach(async () => {
      await store.put(key, bodyOf(data))
    })

    const failOn = (failing: Operation, onPath: (path: string) => boolean = () => true) => {
      fileSystem.failWith = ({ operation, path }) =>
        operation === failing && onPath(path) ? 'EIO' : undefined
    }

    it('get rejects when opening the chunk fails', async () => {
      failOn('open', (path) => path === pathOf(key))
      await expect(store.get(key)).rejects.toMatchObject({ code: 'EIO' })
    })

    it('get rejects, and closes the file, when checking what it opened fails', async () => {
      const fds = await openFds()
      failOn('fd.stat')
      await expect(store.get(key)).rejects.toMatchObject({ code: 'EIO' })
      expect(await openFds()).toBe(fds)
    })

    it('the body errors, rather than ending short, when reading fails', async () => {
      const fds = await openFds()
      failOn('fd.read')
      const body = await store.get(key)
      await expect(readAll(body!)).rejects.toMatchObject({ code: 'EIO' })
      expect(await openFds()).toBe(fds)
    })

    it('has and stat reject when stat fails', async () => {
      failOn('stat', (path) => path === pathOf(key))
      await expect(store.has(key)).rejects.toMatchObject({ code: 'EIO' })
      await expect(store.stat(key)).rejects.toMatchObject({ code: 'EIO' })
    })

    it('delete rejects when unlink fails', async () => {
      failOn('unlink')
      await expect(store.delete(key)).rejects.toMatchObject({ code: 'EIO' })
    })

    it('ping rejects when the root is not accessible', async () => {
      failOn('access')
      await expect(store.ping()).rejects.toMatchObject({ code: 'EIO' })
    })
  })

  describe('list', () => {
    const [first, second] = chunksInTwoFanouts()

    beforeEach(async () => {
      for (const { data, key } of [first, second]) await store.put(key, bodyOf(data))
      fileSystem.calls.length = 0
    })

    const failReaddirOf = (dir: string, code: string) => {
      fileSystem.failWith = ({ operation, path }) =>
        operation === 'readdir' && path === dir ? code : undefined
    }

    it.each([
      ['the root', () => store.root],
      ['a top-level fan-out directory', () => join(store.root, first.hash.slice(0, 2))],
      ['a second-level fan-out directory', () => fanoutDirOf(first.hash)],
    ])('rejects when reading %s fails', async (_, dir) => {
      failReaddirOf(dir(), 'EIO')
      await expect(listAll(store)).rejects.toMatchObject({ code: 'EIO' })
    })

    it('rejects when stat of a chunk fails', async () => {
      fileSystem.failWith = ({ operation, path }) =>
        operation === 'stat' && path === pathOf(first.key) ? 'EIO' : undefined
      await expect(listAll(store)).rejects.toMatchObject({ code: 'EIO' })
    })

    it('skips a fan-out directory that vanished while it walked', async () => {
      failReaddirOf(join(store.root, first.hash.slice(0, 2)), 'ENOENT')
      expect(await listAll(store)).toEqual([second.hash])
      failReaddirOf(fanoutDirOf(first.hash), 'ENOENT')
      expect(await listAll(store)).toEqual([second.hash])
    })

    it('skips a chunk deleted while it walked', async () => {
      fileSystem.failWith = ({ operation, path }) =>
        operation === 'stat' && path === pathOf(first.key) ? 'ENOENT' : undefined
      expect(await listAll(store)).toEqual([second.hash])
    })

    it('yields the first chunk having read only its own directories', async () => {
      const listing = store.list()[Symbol.asyncIterator]()
      const { value } = await listing.next()
      expect([first.hash, second.hash]).toContain(value?.hash)
      // The root, one top-level fan-out directory and one inside it.
      expect(fileSystem.count('readdir')).toBe(3)
      await listing.return?.()
    })
  })
})

import type { Stats } from 'node:fs'
import {
  type FileHandle,
  link,
  lstat,
  mkdir,
  readdir,
  readFile,
  rm,
  utimes,
  writeFile,
} from 'node:fs/promises'
import { dirname, join, resolve, sep } from 'node:path'
import { type DiskFileSystem, nodeFileSystem } from '../../src/adapters/disk/disk-file-system.js'

/**
 * A DiskFileSystem over the real file system under `root` that also keeps what a power cut would
 * leave, and on `powerLoss()` rewrites the tree to exactly that. A SIGKILL keeps the page cache,
 * so only this can show a missing fsync.
 *
 * The model is the pessimistic reading of ext4 data=ordered (and of POSIX): nothing is durable
 * unless fsynced.
 * - A file's bytes are durable as of its last sync()/datasync() (empty before the first), through
 *   whichever name or handle: files are tracked by inode, so one fsync covers every hard link.
 * - A directory's entries (created by open, link, mkdir; removed by unlink) are durable as of its
 *   last fsync: open(dir, 'r') then sync(). Until then a new name vanishes and an unlinked one
 *   comes back with its durable bytes. A directory made by mkdir is itself such an entry.
 * - What a power cut leaves is what can be reached from the root through durable entries, so a
 *   directory whose own name never became durable takes everything in it along.
 * (Real ext4 is kinder: its journal commit for one fsync usually carries other metadata along.
 * A put that survives here survives there.)
 *
 * Every call goes to the real file system; what the model needs it reads back from there at the
 * moment of each fsync (Linux only: through /proc/self/fd, which reaches unlinked files too).
 * Whatever is under the root when the shim is made is taken as durable, and must not be changed
 * behind the shim's back afterwards.
 */
export class PowerLossFileSystem implements DiskFileSystem {
  readonly root: string
  /** The calls that reached the real file system, in order (not those held back by a power cut). */
  readonly calls: Call[] = []
  /** The tree a power cut would leave, from the root down. */
  #durableRoot: DirNode = newDir()
  /** Live inodes by number: the nodes behind the names on disk now, and behind open handles. */
  readonly #inodes = new Map<number, Node>()
  readonly #openHandles = new Set<OpenHandle>()
  readonly #inFlight = new Set<Promise<unknown>>()
  #callsLeft = Number.POSITIVE_INFINITY
  #onPowerCut: (() => void) | undefined
  /** Bumped at each power loss or kill: handles opened before it belong to a dead process. */
  #epoch = 0

  private constructor(root: string) {
    this.root = resolve(root)
  }

  /** A shim over `root` (created if missing); what is already there counts as durable. */
  static async over(root: string): Promise<PowerLossFileSystem> {
    const fileSystem = new PowerLossFileSystem(root)
    await mkdir(fileSystem.root, { recursive: true })
    await fileSystem.#takeEverythingAsDurable()
    return fileSystem
  }

  /**
   * Lets `calls` more calls reach the disk, then holds every later one forever, as a machine
   * that has lost power answers nothing. Resolves when the first call is held back: the caller
   * has got as far as it ever will, so a test can now call `powerLoss()`. (It never resolves
   * when the caller makes no more calls.)
   */
  cutPowerAfter(calls: number): Promise<void> {
    this.#callsLeft = calls
    return new Promise((resolve) => {
      this.#onPowerCut = resolve
    })
  }

  /**
   * Power comes back: calls already let through finish, and the tree under the root becomes
   * exactly what was durable. Calls held back never run, handles opened before fail, and from
   * now on everything on disk counts as durable.
   */
  async powerLoss(): Promise<void> {
    await this.#haltAndSettle()
    for (const handle of this.#openHandles) await handle.raw.close().catch(() => {})
    this.#openHandles.clear()
    const image = this.#durableRoot
    for (const name of await readdir(this.root)) {
      await rm(join(this.root, name), { recursive: true, force: true })
    }
    await materialize(image, this.root, new Map())
    await this.#takeEverythingAsDurable()
    this.#restorePower()
  }

  /**
   * The process dies (SIGKILL) but the machine keeps running: nothing is lost, since the page
   * cache survives, but calls held back never run, and the dead process's handles are closed and
   * fail if used. Nothing becomes durable either: a later power loss still drops what was unsynced.
   */
  async killProcess(): Promise<void> {
    await this.#haltAndSettle()
    for (const handle of this.#openHandles) await this.#closeHandle(handle, () => handle.raw.close())
    this.#restorePower()
  }

  async open(path: string, flags: string): Promise<FileHandle> {
    const target = this.#inside(path)
    return this.#call('open', target, async () => {
      const raw = await nodeFileSystem.open(target, flags)
      try {
        const stats = await raw.stat()
        return this.#wrap({ raw, path: target, ino: stats.ino, node: this.#nodeOpened(stats, flags, target) })
      } catch (error) {
        await raw.close()
        throw error
      }
    })
  }

  async link(existingPath: string, newPath: string): Promise<void> {
    const [existing, target] = [this.#inside(existingPath), this.#inside(newPath)]
    return this.#call('link', target, () => nodeFileSystem.link(existing, target))
  }

  async mkdir(path: string, options: { recursive: true }): Promise<string | undefined> {
    const target = this.#inside(path)
    return this.#call('mkdir', target, async () => {
      const firstCreated = await nodeFileSystem.mkdir(target, options)
      if (firstCreated !== undefined) await this.#adoptNewDirectories(this.#inside(firstCreated), target)
      return firstCreated
    })
  }

  async unlink(path: string): Promise<void> {
    const target = this.#inside(path)
    return this.#call('unlink', target, async () => {
      const before = await lstat(target).catch(() => undefined)
      await nodeFileSystem.unlink(target)
      const node = before === undefined ? undefined : this.#inodes.get(before.ino)
      // The inode is freed with its last name when no handle holds it, and Linux may then give
      // its number to the next new file, which must not inherit this one's durable bytes.
      if (node?.kind === 'file' && before?.nlink === 1 && node.openHandles === 0)
        this.#forget(before.ino, node)
    })
  }

  async stat(path: string): Promise<Stats> {
    const target = this.#inside(path)
    return this.#call('stat', target, () => nodeFileSystem.stat(target))
  }

  async lstat(path: string): Promise<Stats> {
    const target = this.#inside(path)
    return this.#call('lstat', target, () => nodeFileSystem.lstat(target))
  }

  async readdir(path: string): Promise<string[]> {
    const target = this.#inside(path)
    return this.#call('readdir', target, () => nodeFileSystem.readdir(target))
  }

  async access(path: string, mode: number): Promise<void> {
    const target = this.#inside(path)
    return this.#call('access', target, () => nodeFileSystem.access(target, mode))
  }

  #restorePower(): void {
    this.#callsLeft = Number.POSITIVE_INFINITY
    this.#onPowerCut = undefined
  }

  /** Runs one call, or holds it forever once the power is cut. */
  #call<T>(operation: Operation, path: string, run: () => Promise<T>): Promise<T> {
    if (this.#callsLeft <= 0) {
      this.#onPowerCut?.()
      return new Promise<T>(() => {})
    }
    this.#callsLeft -= 1
    this.calls.push({ operation, path })
    const result = run()
    const settled = result.then(
      () => {},
      () => {},
    )
    this.#inFlight.add(settled)
    void settled.then(() => this.#inFlight.delete(settled))
    return result
  }

  /** Holds every new call, then waits for those let through: they reached the disk before the cut. */
  async #haltAndSettle(): Promise<void> {
    this.#callsLeft = 0
    while (this.#inFlight.size > 0) await Promise.all(this.#inFlight)
    this.#epoch += 1
  }

  #nodeOpened(stats: Stats, flags: string, path: string): Node {
    const known = this.#inodes.get(stats.ino)
    if (stats.isDirectory()) {
      if (known?.kind !== 'dir') throw unknownInode(path)
      return known
    }
    if (!stats.isFile()) throw notModelled(path)
    const creates = /[wa]/.test(flags)
    // 'x' always makes a new inode; 'w' and 'a' make one only when the name was free.
    if (creates && (flags.includes('x') || known?.kind !== 'file')) {
      const created = newFile(stats.mtimeMs)
      this.#inodes.set(stats.ino, created)
      return created
    }
    if (known?.kind !== 'file') throw unknownInode(path)
    return known
  }

  /** Registers the directories one mkdir created, `firstCreated` down to `path`. */
  async #adoptNewDirectories(firstCreated: string, path: string): Promise<void> {
    for (let dir = path; ; dir = dirname(dir)) {
      const { ino } = await lstat(dir)
      // Known already: a concurrent mkdir of the same path created it and registered it first.
      if (this.#inodes.get(ino)?.kind !== 'dir') this.#inodes.set(ino, newDir())
      if (dir === firstCreated || dir === this.root) return
    }
  }

  /**
   * The handle `open` returns: the real one behind a Proxy, so that Node's own streams over it
   * (get's createReadStream) make their reads and close through the shim too.
   */
  #wrap(handle: OpenHandle): FileHandle {
    this.#openHandles.add(handle)
    if (handle.node.kind === 'file') handle.node.openHandles += 1
    const epoch = this.#epoch
    return new Proxy(handle.raw, {
      get: (target, property, receiver) => {
        const value: unknown = Reflect.get(target, property, receiver)
        if (typeof value !== 'function' || !isHandleMethod(property)) return value
        const run = (...args: unknown[]) => value.apply(target, args) as Promise<unknown>
        return (...args: unknown[]) => {
          if (this.#epoch !== epoch) return Promise.reject(staleHandle(handle.path))
          return this.#call(`fd.${property}`, handle.path, () => {
            if (property === 'sync' || property === 'datasync') return this.#sync(handle, () => run(...args))
            if (property === 'close') return this.#closeHandle(handle, () => run(...args))
            return run(...args)
          })
        }
      },
    })
  }

  /**
   * What is on disk as the fsync starts is what it makes durable, once it succeeds. (Read before:
   * a write racing the fsync may or may not be covered, so count it as not.)
   */
  async #sync(handle: OpenHandle, run: () => Promise<unknown>): Promise<unknown> {
    const { node } = handle
    const reopenable = `/proc/self/fd/${handle.raw.fd}`
    let commit: () => void
    if (node.kind === 'file') {
      const data = await readFile(reopenable)
      const { mtimeMs } = await handle.raw.stat()
      commit = () => {
        node.durableData = data
        node.durableMtimeMs = mtimeMs
      }
    } else {
      const entries = await this.#entriesOf(reopenable, handle.path)
      commit = () => {
        node.durableEntries = entries
      }
    }
    const result = await run()
    commit()
    return result
  }

  async #entriesOf(dir: string, shownAs: string): Promise<Map<string, Node>> {
    const entries = new Map<string, Node>()
    for (const name of await readdir(dir)) {
      const node = this.#inodes.get((await lstat(join(dir, name))).ino)
      if (node === undefined) throw unknownInode(join(shownAs, name))
      entries.set(name, node)
    }
    return entries
  }

  async #closeHandle(handle: OpenHandle, run: () => Promise<unknown>): Promise<unknown> {
    if (!this.#openHandles.delete(handle)) return run()
    const { node } = handle
    if (node.kind !== 'file') return run()
    const links = await handle.raw.stat().then(
      ({ nlink }) => nlink,
      () => 1,
    )
    try {
      return await run()
    } finally {
      node.openHandles -= 1
      if (node.openHandles === 0 && links === 0) this.#forget(handle.ino, node)
    }
  }

  #forget(ino: number, node: Node): void {
    if (this.#inodes.get(ino) === node) this.#inodes.delete(ino)
  }

  /** Now (at creation, after a power loss) the disk and the durable image agree. */
  async #takeEverythingAsDurable(): Promise<void> {
    this.#inodes.clear()
    this.#durableRoot = await this.#snapshotDirectory(this.root)
  }

  async #snapshotDirectory(path: string): Promise<DirNode> {
    const dir = newDir()
    this.#inodes.set((await lstat(path)).ino, dir)
    for (const name of await readdir(path)) {
      const child = join(path, name)
      const stats = await lstat(child)
      let node = this.#inodes.get(stats.ino)
      if (node === undefined && stats.isDirectory()) node = await this.#snapshotDirectory(child)
      else if (node === undefined && stats.isFile()) {
        node = { ...newFile(stats.mtimeMs), durableData: await readFile(child) }
        this.#inodes.set(stats.ino, node)
      }
      if (node === undefined) throw notModelled(child)
      dir.durableEntries.set(name, node)
    }
    return dir
  }

  #inside(path: string): string {
    const absolute = resolve(path)
    if (absolute !== this.root && !absolute.startsWith(this.root + sep)) {
      throw new Error(`PowerLossFileSystem: ${absolute} is outside its root ${this.root}`)
    }
    return absolute
  }
}

/** A call as it reached the disk: a path operation, or (`fd.…`) one on a handle opened at `path`. */
export interface Call {
  operation: Operation
  path: string
}

export type Operation =
  | 'open'
  | 'link'
  | 'mkdir'
  | 'unlink'
  | 'stat'
  | 'lstat'
  | 'readdir'
  | 'access'
  | `fd.${HandleMethod}`

/** The FileHandle methods that reach the disk; each is a call that a power cut can hold back. */
const HANDLE_METHODS = [
  'write',
  'writev',
  'read',
  'readv',
  'readFile',
  'writeFile',
  'appendFile',
  'truncate',
  'stat',
  'sync',
  'datasync',
  'close',
] as const
type HandleMethod = (typeof HANDLE_METHODS)[number]
const isHandleMethod = (property: string | symbol): property is HandleMethod =>
  (HANDLE_METHODS as readonly (string | symbol)[]).includes(property)

/** A file as a power cut would leave it. */
interface FileNode {
  readonly kind: 'file'
  /** Its bytes as of its last fsync: empty before the first. */
  durableData: Buffer
  /** Restored too, since the store reports a chunk's mtime as when it was stored. */
  durableMtimeMs: number
  /** Handles open on it: an unlinked file's inode is freed only when the last one closes. */
  openHandles: number
}

/** A directory as a power cut would leave it: its entries as of its last fsync. */
interface DirNode {
  readonly kind: 'dir'
  durableEntries: Map<string, Node>
}

type Node = FileNode | DirNode

interface OpenHandle {
  readonly raw: FileHandle
  /** Where it was opened (its name may be gone since). */
  readonly path: string
  readonly ino: number
  readonly node: Node
}

const newFile = (mtimeMs: number): FileNode => ({
  kind: 'file',
  durableData: Buffer.alloc(0),
  durableMtimeMs: mtimeMs,
  openHandles: 0,
})

const newDir = (): DirNode => ({ kind: 'dir', durableEntries: new Map() })

/** Writes the durable image of `dir` into the (empty) directory at `path`; hard links stay links. */
async function materialize(dir: DirNode, path: string, written: Map<FileNode, string>): Promise<void> {
  for (const [name, node] of dir.durableEntries) {
    const child = join(path, name)
    if (node.kind === 'dir') {
      await mkdir(child)
      await materialize(node, child, written)
      continue
    }
    const firstName = written.get(node)
    if (firstName !== undefined) {
      await link(firstName, child)
      continue
    }
    await writeFile(child, node.durableData, { flag: 'wx' })
    const mtime = node.durableMtimeMs / 1000
    await utimes(child, mtime, mtime)
    written.set(node, child)
  }
}

const unknownInode = (path: string) =>
  new Error(`PowerLossFileSystem: ${path} was made behind the shim's back; it cannot know what is durable`)

const notModelled = (path: string) =>
  new Error(`PowerLossFileSystem: ${path} is neither a file nor a directory, which the model leaves out`)

const staleHandle = (path: string): NodeJS.ErrnoException =>
  Object.assign(new Error(`EBADF: handle on ${path} was opened before a power loss or kill`), {
    code: 'EBADF',
    path,
  })

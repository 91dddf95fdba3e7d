import { randomUUID } from 'node:crypto'
import { constants } from 'node:fs'
import type { FileHandle } from 'node:fs/promises'
import { dirname, join, resolve } from 'node:path'
import type { Readable } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import { type BlobKey, blobName, isBlobKey, parseBlobName } from '../../domain/blob-key.js'
import { MiB } from '../../domain/chunk-plan.js'
import { invalid } from '../../domain/errors.js'
import type { BlobStore, ByteRange, StoredBlob } from '../../ports/blob-store.js'
import { crashPoint } from '../../support/crash-points.js'
import { type DiskFileSystem, nodeFileSystem } from './disk-file-system.js'
import { FileSink } from './file-sink.js'

export interface DiskBlobStoreOptions {
  /** Directory that holds the chunks (`ab/cd/<hash>.<generation>`) and `tmp/`. Created if missing. */
  root: string
  /**
   * Temp files older than this are leftovers of a crash and are removed by `init()`. Younger
   * ones may belong to a put in progress in another process sharing the root.
   */
  staleTempAgeMs?: number
  /** The calls the store makes; tests pass one that fails on cue. Defaults to node:fs/promises. */
  fileSystem?: DiskFileSystem
}

/**
 * Body bytes that wait while a write is in flight, then go out in one writev. 4 MiB measured no
 * faster than 1 MiB and costs four times the memory per concurrent upload.
 */
const WRITE_HIGH_WATER_MARK = MiB
/** A get reads this much at once; Node's default (64 KiB) costs 16 syscalls per 4 MiB chunk. */
const READ_HIGH_WATER_MARK = MiB
const DEFAULT_STALE_TEMP_AGE_MS = 60 * 60 * 1000
const TEMP_DIR = 'tmp'
/** A fan-out directory's name: two of the hash's lowercase hex digits. */
const FANOUT_NAME = /^[0-9a-f]{2}$/

/**
 * Chunks as files on local disk, named by their key (`abcd….<generation>`, domain/blob-key.ts)
 * in a two-level fan-out on the hash (`root/ab/cd/`) so no directory grows past a few thousand
 * entries, and every copy of one chunk sits in one directory.
 *
 * Durability: a put writes a temp file, fsyncs it, hard-links it into place and fsyncs the
 * fan-out directory. `link` (unlike `rename`) fails rather than replaces when the name exists,
 * so a stored copy is never rewritten, and a crash leaves either no object or a whole one.
 */
export class DiskBlobStore implements BlobStore {
  readonly root: string
  readonly #tempDir: string
  readonly #staleTempAgeMs: number
  readonly #fs: DiskFileSystem
  #initialized: Promise<void> | undefined
  /** Fan-out directories this process has made sure of (see #durableDir). */
  readonly #durableDirs = new Map<string, Promise<void>>()

  constructor(options: DiskBlobStoreOptions) {
    this.root = resolve(options.root)
    this.#tempDir = join(this.root, TEMP_DIR)
    this.#staleTempAgeMs = options.staleTempAgeMs ?? DEFAULT_STALE_TEMP_AGE_MS
    this.#fs = options.fileSystem ?? nodeFileSystem
  }

  /**
   * Creates the root and its temp directory and removes stale temp files. Puts call it
   * themselves; call it at startup to clean up after a crash before the first upload.
   */
  init(): Promise<void> {
    this.#initialized ??= this.#initialize().catch((error: unknown) => {
      this.#initialized = undefined
      throw error
    })
    return this.#initialized
  }

  async put(key: BlobKey, body: Readable): Promise<void> {
    const path = this.#pathOf(key)
    // The body may fail while we wait on the file system below (a verifying body ends early when
    // it is small): with no listener, that would be an uncaught exception. The pipelines still
    // see the error, as the stream's `errored` state.
    body.on('error', ignoreUntilPiped)
    try {
      await this.#put(key, path, body)
    } finally {
      body.off('error', ignoreUntilPiped)
    }
  }

  async #put(key: BlobKey, path: string, body: Readable): Promise<void> {
    await this.init()
    // No look for the key first: callers put under a fresh generation, which never exists, and a
    // key that does exists all the same fails the link below (EEXIST), keeping the stored copy;
    // the body is consumed all the same (a verifying body reports a mismatch only at its end).
    const tempPath = join(this.#tempDir, `${blobName(key)}.${randomUUID()}`)
    try {
      await this.#writeTempFile(tempPath, body)
      await this.#linkIntoPlace(tempPath, path)
      crashPoint('blob.put.after-link')
    } catch (error) {
      // The body's or the disk's error is the one to report (ENOSPC and EIO answer differently),
      // not a failure to clean up after it; a temp file left behind goes at the next start's init().
      await this.#unlinkIfPresent(tempPath).catch(() => {})
      throw error
    }
    await this.#unlinkIfPresent(tempPath)
    await this.#syncDir(dirname(path))
    crashPoint('blob.put.after-dir-fsync')
  }

  /** Writes `body` to a new temp file and fsyncs it; the file is closed whatever happens. */
  async #writeTempFile(tempPath: string, body: Readable): Promise<void> {
    const file = await this.#fs.open(tempPath, 'wx')
    try {
      await pipeline(body, new FileSink(file, WRITE_HIGH_WATER_MARK))
      crashPoint('blob.put.after-temp-write')
      // Never retried: after a failed fsync the kernel may have dropped the dirty pages and
      // a second fsync would report success for bytes that are gone.
      await file.sync()
      crashPoint('blob.put.after-fsync')
    } catch (error) {
      // The body's or the write's error is the one to report, not a failure to close after it.
      await file.close().catch(() => {})
      throw error
    }
    await file.close()
  }

  async get(key: BlobKey, range?: ByteRange): Promise<Readable | null> {
    const path = this.#pathOf(key)
    assertByteRange(range)
    let file: FileHandle
    try {
      file = await this.#fs.open(path, 'r')
    } catch (error) {
      if (errorCode(error) === 'ENOENT') return null
      throw error
    }
    try {
      // Opening a directory for reading succeeds on Linux; fail here, not in the middle of a response.
      if (!(await file.stat()).isFile()) throw notARegularFile(path)
      return file.createReadStream({
        start: range?.start,
        end: range?.end,
        highWaterMark: READ_HIGH_WATER_MARK,
      })
    } catch (error) {
      await file.close()
      throw error
    }
  }

  async has(key: BlobKey): Promise<boolean> {
    return this.#exists(this.#pathOf(key))
  }

  async stat(key: BlobKey): Promise<{ size: number; storedAt: number } | null> {
    return this.#statChunk(this.#pathOf(key))
  }

  /**
   * Walks the fan-out one directory at a time: it holds the names of at most one directory per
   * level (a few thousand), however many chunks there are.
   */
  async *list(): AsyncIterable<StoredBlob> {
    await this.init()
    // The root itself missing after init() is a fault (an unmounted volume), not an empty store.
    for (const outer of await this.#fs.readdir(this.root)) {
      // Also skips tmp/, whose files are puts in progress or leftovers, never chunks.
      if (!FANOUT_NAME.test(outer)) continue
      for (const inner of await this.#fanoutEntries(join(this.root, outer))) {
        if (!FANOUT_NAME.test(inner)) continue
        const dir = join(this.root, outer, inner)
        for (const name of await this.#fanoutEntries(dir)) {
          const key = parseBlobName(name)
          // A hash filed under the wrong prefix is unreachable by get() or delete(): not a chunk.
          if (key === null || !key.hash.startsWith(outer + inner)) continue
          const stats = await this.#statChunk(join(dir, name))
          // Null: deleted since the directory was read.
          if (stats !== null) yield { ...key, ...stats }
        }
      }
    }
  }

  async delete(key: BlobKey): Promise<void> {
    await this.#unlinkIfPresent(this.#pathOf(key))
  }

  async removeAbandonedWrites(startedBefore: number): Promise<number> {
    await this.init()
    return this.#removeTempFilesBefore(startedBefore)
  }

  async ping(): Promise<void> {
    await this.init()
    const mode = constants.R_OK | constants.W_OK | constants.X_OK
    await this.#fs.access(this.root, mode)
    await this.#fs.access(this.#tempDir, mode)
  }

  /** The copy's path; the key is checked first, so no caller can name a path outside the root. */
  #pathOf(key: BlobKey): string {
    if (!isBlobKey(key)) throw invalid('a blob key is a lowercase hex SHA-256 and a generation')
    const { hash } = key
    return join(this.root, hash.slice(0, 2), hash.slice(2, 4), blobName(key))
  }

  async #exists(path: string): Promise<boolean> {
    return (await this.#statChunk(path)) !== null
  }

  async #statChunk(path: string): Promise<{ size: number; storedAt: number } | null> {
    try {
      const stats = await this.#fs.stat(path)
      if (!stats.isFile()) throw notARegularFile(path)
      return { size: stats.size, storedAt: Math.floor(stats.mtimeMs) }
    } catch (error) {
      if (errorCode(error) === 'ENOENT') return null
      throw error
    }
  }

  /** A fan-out directory's names; none when it vanished after its parent was read. */
  async #fanoutEntries(dir: string): Promise<string[]> {
    try {
      return await this.#fs.readdir(dir)
    } catch (error) {
      if (errorCode(error) === 'ENOENT') return []
      throw error
    }
  }

  async #linkIntoPlace(tempPath: string, path: string): Promise<void> {
    await this.#durableDir(dirname(path))
    try {
      await this.#fs.link(tempPath, path)
    } catch (error) {
      // EEXIST: a put of the same key stored the same bytes first; its object is kept.
      if (errorCode(error) !== 'EEXIST') throw error
    }
  }

  /**
   * Makes sure a fan-out directory exists and that its name, and its parent's, are durable:
   * a link into a directory whose own name a power cut can undo is not durable either. This
   * holds for a directory left by a process killed after its mkdir and before its fsyncs, so
   * it is checked once per directory per process rather than only when this process creates
   * it (a few fsyncs per directory, then nothing).
   */
  #durableDir(dir: string): Promise<void> {
    if (dir === this.root) return Promise.resolve()
    let ready = this.#durableDirs.get(dir)
    if (ready === undefined) {
      ready = (async () => {
        await this.#durableDir(dirname(dir))
        await this.#fs.mkdir(dir, { recursive: true })
        // A directory's name lives in its parent.
        await this.#syncDir(dirname(dir))
      })()
      // A failure (EIO, ENOSPC) is tried again by the next put, not remembered.
      ready.catch(() => this.#durableDirs.delete(dir))
      this.#durableDirs.set(dir, ready)
    }
    return ready
  }

  async #initialize(): Promise<void> {
    const firstCreated = await this.#fs.mkdir(this.#tempDir, { recursive: true })
    if (firstCreated !== undefined) {
      // Make the new root and tmp/ durable too; this happens once per deployment.
      const stop = dirname(firstCreated)
      for (let dir = this.#tempDir; dir !== stop && dir !== dirname(dir); dir = dirname(dir)) {
        await this.#syncDir(dirname(dir))
      }
    }
    await this.#removeTempFilesBefore(Date.now() - this.#staleTempAgeMs)
  }

  /** Temp files last written before `cutoff`: a put still writing touches its file all along. */
  async #removeTempFilesBefore(cutoff: number): Promise<number> {
    let removed = 0
    for (const name of await this.#fs.readdir(this.#tempDir)) {
      const path = join(this.#tempDir, name)
      try {
        const stats = await this.#fs.lstat(path)
        if (stats.isFile() && stats.mtimeMs < cutoff) {
          await this.#fs.unlink(path)
          removed += 1
        }
      } catch (error) {
        // Another process sharing the root may have removed it first.
        if (errorCode(error) !== 'ENOENT') throw error
      }
    }
    return removed
  }

  async #syncDir(path: string): Promise<void> {
    const dir = await this.#fs.open(path, 'r')
    try {
      await dir.sync()
    } finally {
      await dir.close()
    }
  }

  async #unlinkIfPresent(path: string): Promise<void> {
    try {
      await this.#fs.unlink(path)
    } catch (error) {
      if (errorCode(error) !== 'ENOENT') throw error
    }
  }
}

const ignoreUntilPiped = (): void => {}

const errorCode = (error: unknown): unknown => (error as NodeJS.ErrnoException | undefined)?.code

function notARegularFile(path: string): NodeJS.ErrnoException {
  return Object.assign(new Error(`EISDIR: chunk path is not a regular file: ${path}`), {
    code: 'EISDIR',
    path,
  })
}

function assertByteRange(range: ByteRange | undefined): void {
  if (range === undefined) return
  const { start, end } = range
  if (!Number.isSafeInteger(start) || !Number.isSafeInteger(end) || start < 0 || end < start) {
    throw new RangeError(`invalid byte range ${start}-${end}`)
  }
}

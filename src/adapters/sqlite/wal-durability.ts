import { type FileHandle, open } from 'node:fs/promises'
import path from 'node:path'
import type BetterSqlite3 from 'better-sqlite3'
import { GroupSync } from './group-sync.js'

const noWait = (): Promise<void> => Promise.resolve()

/**
 * Makes SQLite commits durable before they are answered, without holding the event loop.
 *
 * With `synchronous=FULL`, SQLite fsyncs the WAL inside every COMMIT, and better-sqlite3 runs
 * COMMIT on the main thread: every request in flight waits for the disk, one commit at a time.
 * With `synchronous=NORMAL` a commit only writes the WAL (atomic and consistent after a crash of
 * the process, which keeps the page cache, but not after a power loss); this class then
 * fdatasyncs the WAL file on the libuv pool, one sync for all the commits that ended meanwhile
 * (GroupSync), and the driver answers the commit only after it. Checkpoints stay SQLite's own:
 * in NORMAL mode it syncs the WAL before copying it into the database and the database after.
 *
 * A reader waits for the sync of what it could have read: a commit is visible to the next query
 * at once, and an answer built on it must not outlive a power cut that undoes it (PostgreSQL,
 * too, shows a commit only once it is flushed).
 */
export class WalDurability {
  readonly #totalChanges: BetterSqlite3.Statement | null
  readonly #group: GroupSync | null
  readonly #walPath: string
  #wal: FileHandle | undefined
  /** `total_changes()` as of the last sync requested: rows changed since need another. */
  #requestedThrough = 0
  #pending: Promise<void> | undefined

  /** `file`: the database's path, or null for an in-memory database (nothing to sync). */
  constructor(database: BetterSqlite3.Database, file: string | null) {
    this.#walPath = `${file}-wal`
    this.#totalChanges = file === null ? null : database.prepare('select total_changes()').pluck()
    this.#group = file === null ? null : new GroupSync(() => this.#syncWal(path.dirname(file)))
  }

  /**
   * Called when a query or transaction ends, with the connection still held (so no other commit
   * can slip in between): answers what to wait for once the connection is released.
   */
  afterUse(): () => Promise<void> {
    const group = this.#group
    if (group === null || this.#totalChanges === null) return noWait
    if (group.failure) {
      const failure = group.failure
      return () => Promise.reject(failure)
    }
    // Counts rows changed by this connection, committed or rolled back: a rollback costs a
    // needless sync, never a missing one.
    const changes = this.#totalChanges.get() as number
    if (changes !== this.#requestedThrough) {
      this.#requestedThrough = changes
      const synced = group.sync()
      synced.catch(() => {})
      this.#pending = synced
      const settle = (): void => {
        if (this.#pending === synced) this.#pending = undefined
      }
      synced.then(settle, settle)
    }
    const pending = this.#pending
    return pending ? () => pending : noWait
  }

  /** Everything written so far, schema changes included (they change no rows). */
  syncAll(): Promise<void> {
    return this.#group?.sync() ?? Promise.resolve()
  }

  async close(): Promise<void> {
    await this.#wal?.close()
    this.#wal = undefined
  }

  async #syncWal(directory: string): Promise<void> {
    if (this.#wal === undefined) {
      try {
        this.#wal = await open(this.#walPath, 'r')
      } catch (error) {
        // No WAL yet: nothing has been written through it since the database was opened.
        if ((error as NodeJS.ErrnoException).code === 'ENOENT') return
        throw error
      }
      // The WAL's name (and the database's, made in the same directory) must survive too.
      const dir = await open(directory, 'r')
      try {
        await dir.sync()
      } finally {
        await dir.close()
      }
    }
    await this.#wal.datasync()
  }
}

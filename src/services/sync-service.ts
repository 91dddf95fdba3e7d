import type { Clock } from '../domain/clock.js'
import { AppError } from '../domain/errors.js'
import type { JournalEntry } from '../domain/journal.js'
import type { Millis, User } from '../domain/model.js'
import type { MetadataStore } from '../ports/metadata-store.js'
import type { SyncHub } from './sync-hub.js'

export interface SyncOptions {
  /** Entries older than this are compacted away (a cursor before them answers 410). */
  journalRetentionMs: Millis
  /** Entries kept per user at most, however recent. */
  journalMaxEntries: number
}

/** Which page of the journal: the entries after position `after`, at most `limit` of them. */
export interface ChangesQuery {
  after: number
  limit: number
}

export interface LongPollOptions {
  /** The position the client has: any entry after it ends the wait. */
  after: number
  timeoutMs: Millis
  /** Aborted when the client goes away: the wait ends at once. */
  signal?: AbortSignal
}

export interface ChangesPage {
  entries: JournalEntry[]
  /** Where to continue from: the last entry's position, or the cursor given. */
  cursor: number
  hasMore: boolean
}

/** Journals compacted per statement batch by `compact`. */
const COMPACT_USERS_PER_BATCH = 500

/** The journal as clients read it (API.md, Sync). */
export class SyncService {
  constructor(
    private readonly meta: MetadataStore,
    private readonly hub: SyncHub,
    private readonly clock: Clock,
    private readonly options: SyncOptions,
  ) {}

  /** One page of the caller's journal after a cursor the client sent (0: from the start). */
  async changes(user: User, { after, limit }: ChangesQuery): Promise<ChangesPage> {
    const entries = await this.meta.journal.after(user.id, after, limit + 1)
    // Read after the entries: compaction raises the floor before it deletes, so an entry
    // missing from this page shows up as a floor above the cursor (see compact()).
    await this.#checkCursor(user, after)
    const page = entries.slice(0, limit)
    return { entries: page, cursor: page.at(-1)?.seq ?? after, hasMore: entries.length > limit }
  }

  /**
   * The next page of a live feed (the sync socket) whose starting position was checked
   * (`startingPosition`): one query, where `changes` needs two. Positions are consecutive, so
   * a hole right after the feed's position means compaction overtook it while it was open.
   */
  async follow(user: User, { after, limit }: ChangesQuery): Promise<ChangesPage> {
    const entries = await this.meta.journal.after(user.id, after, limit + 1)
    if (entries.length > 0 && entries[0]?.seq !== after + 1) {
      throw new AppError('CURSOR_EXPIRED', 'the journal was compacted past this socket: list from scratch')
    }
    const page = entries.slice(0, limit)
    return { entries: page, cursor: page.at(-1)?.seq ?? after, hasMore: entries.length > limit }
  }

  /** The newest position: where a client that has just listed everything goes on from. */
  async latest(user: User): Promise<number> {
    return (await this.meta.journal.bounds(user.id)).head
  }

  /**
   * Where a live feed starts: the position given, once the journal is known to hold everything
   * after it, or the newest position when none is given (the client wants what comes next).
   */
  async startingPosition(user: User, after: number | undefined): Promise<number> {
    if (after === undefined) return this.latest(user)
    await this.#checkCursor(user, after)
    return after
  }

  /**
   * Long poll: resolves true as soon as the journal has something after `after`, false after
   * `timeoutMs` (or when the server shuts down, or `signal` aborts: the client went away).
   */
  async waitForChange(user: User, { after, timeoutMs, signal }: LongPollOptions): Promise<boolean> {
    const wakeUp = new WakeUp()
    // Watching before the first read: a change committed in between still wakes us.
    const unwatch = await this.hub.watch(user.id, wakeUp)
    const abort = () => wakeUp.wake()
    signal?.addEventListener('abort', abort)
    const deadline = Date.now() + timeoutMs
    try {
      await this.#checkCursor(user, after)
      for (;;) {
        if ((await this.meta.journal.bounds(user.id)).head > after) return true
        const left = deadline - Date.now()
        if (left <= 0 || signal?.aborted || this.hub.closed) return false
        await wakeUp.next(left)
      }
    } finally {
      signal?.removeEventListener('abort', abort)
      unwatch()
    }
  }

  /**
   * Throws CURSOR_EXPIRED when the journal no longer holds everything after `after`
   * (compacted), or never held it (a position beyond the head: another server's cursor, or a
   * database restored from a backup).
   */
  async #checkCursor(user: User, after: number): Promise<void> {
    const { head, floor } = await this.meta.journal.bounds(user.id)
    if (after < floor || after > head) {
      throw new AppError(
        'CURSOR_EXPIRED',
        'this cursor is older than the journal kept (or not from this server): take GET /sync/latest and list from scratch',
      )
    }
  }

  /** Drops journal entries past retention; answers how many. For the upkeep job. */
  async compact(): Promise<number> {
    const before = this.clock() - this.options.journalRetentionMs
    let removed = 0
    for (;;) {
      const batch = await this.meta.journal.compact(
        before,
        this.options.journalMaxEntries,
        COMPACT_USERS_PER_BATCH,
      )
      removed += batch.removed
      if (!batch.more) return removed
    }
  }
}

/**
 * What a long poll waits on: woken by the hub (or by the client leaving), or after a time. A
 * wake that comes while the poll is reading the journal is kept for the next wait, not lost.
 */
class WakeUp {
  #woken!: Promise<void>
  #resolve!: () => void

  constructor() {
    this.#arm()
  }

  wake(): void {
    this.#resolve()
  }

  /** Resolves at the next wake (or one already come since the last), or after `ms`. */
  async next(ms: number): Promise<void> {
    let timer: NodeJS.Timeout | undefined
    const timeout = new Promise<void>((resolve) => {
      timer = setTimeout(resolve, ms)
    })
    try {
      await Promise.race([this.#woken, timeout])
    } finally {
      clearTimeout(timer)
      this.#arm()
    }
  }

  #arm(): void {
    this.#woken = new Promise<void>((resolve) => {
      this.#resolve = resolve
    })
  }
}

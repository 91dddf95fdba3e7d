import type { Clock } from '../domain/clock.js'
import { AppError, invalid } from '../domain/errors.js'
import { decodeJournalCursor, type JournalEntry } from '../domain/journal.js'
import type { Millis, User } from '../domain/model.js'
import type { MetadataStore } from '../ports/metadata-store.js'
import { parseLimit } from './paging.js'
import type { SyncHub } from './sync-hub.js'

export interface SyncOptions {
  /** Entries older than this are compacted away (a cursor before them answers 410). */
  journalRetentionMs: Millis
  /** Entries kept per user at most, however recent. */
  journalMaxEntries: number
}

export interface ChangesPage {
  entries: JournalEntry[]
  /** Where to continue from: the last entry's position, or the cursor given. */
  cursor: number
  hasMore: boolean
}

export const LONGPOLL_DEFAULT_SECONDS = 30
export const LONGPOLL_MAX_SECONDS = 300
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

  /** One page of the caller's journal after `cursor` (no cursor: from the start). */
  async changes(user: User, query: { cursor?: unknown; limit?: unknown }): Promise<ChangesPage> {
    const after = parseCursor(query.cursor)
    const limit = parseLimit(query.limit)
    const entries = await this.meta.journal.after(user.id, after, limit + 1)
    // Read after the entries: compaction raises the floor before it deletes, so an entry
    // missing from this page shows up as a floor above the cursor (see compact()).
    await this.checkCursor(user, after)
    const page = entries.slice(0, limit)
    return { entries: page, cursor: page.at(-1)?.seq ?? after, hasMore: entries.length > limit }
  }

  /** The newest position: where a client that has just listed everything goes on from. */
  async latest(user: User): Promise<number> {
    return (await this.meta.journal.bounds(user.id)).head
  }

  /**
   * Throws CURSOR_EXPIRED when the journal no longer holds everything after `after`
   * (compacted), or never held it (a position beyond the head: another server's cursor, or a
   * database restored from a backup).
   */
  async checkCursor(user: User, after: number): Promise<void> {
    const { head, floor } = await this.meta.journal.bounds(user.id)
    if (after < floor || after > head) {
      throw new AppError(
        'CURSOR_EXPIRED',
        'this cursor is older than the journal kept (or not from this server): take GET /sync/latest and list from scratch',
      )
    }
  }

  /**
   * Long poll: resolves true as soon as the journal has something after `cursor`, false after
   * `timeout` seconds (or when the server shuts down, or `signal` aborts: the client went away).
   */
  async waitForChange(
    user: User,
    query: { cursor?: unknown; timeout?: unknown },
    signal?: AbortSignal,
  ): Promise<boolean> {
    const after = parseCursor(query.cursor)
    const timeoutMs = parseTimeout(query.timeout) * 1000
    let wake: () => void = () => {}
    let woken = new Promise<void>((resolve) => {
      wake = resolve
    })
    // Watching before the first read: a change committed in between still wakes us.
    const unwatch = await this.hub.watch(user.id, { wake: () => wake() })
    const abort = () => wake()
    signal?.addEventListener('abort', abort)
    const deadline = Date.now() + timeoutMs
    let timer: NodeJS.Timeout | undefined
    try {
      await this.checkCursor(user, after)
      for (;;) {
        if ((await this.meta.journal.bounds(user.id)).head > after) return true
        const left = deadline - Date.now()
        if (left <= 0 || signal?.aborted || this.hub.closed) return false
        const timeout = new Promise<void>((resolve) => {
          timer = setTimeout(resolve, left)
        })
        await Promise.race([woken, timeout])
        clearTimeout(timer)
        woken = new Promise<void>((resolve) => {
          wake = resolve
        })
      }
    } finally {
      clearTimeout(timer)
      signal?.removeEventListener('abort', abort)
      unwatch()
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

/** A cursor from a query string: absent or empty is the start of the journal. */
export function parseCursor(raw: unknown): number {
  if (raw === undefined || raw === '') return 0
  const seq = typeof raw === 'string' ? decodeJournalCursor(raw) : null
  if (seq === null) throw invalid('cursor is not one this server handed out')
  return seq
}

function parseTimeout(raw: unknown): number {
  if (raw === undefined || raw === '') return LONGPOLL_DEFAULT_SECONDS
  const seconds = typeof raw === 'string' && /^\d{1,4}$/.test(raw) ? Number(raw) : Number.NaN
  if (!(seconds >= 1 && seconds <= LONGPOLL_MAX_SECONDS)) {
    throw invalid(`timeout must be a whole number of seconds from 1 to ${LONGPOLL_MAX_SECONDS}`)
  }
  return seconds
}

import { changeMessage, type JournalEntry } from '../domain/journal.js'
import type { ChangeEvent, EventBus, EventBusListener } from '../ports/event-bus.js'

/** A client of this node waiting for a user's changes: a WebSocket or a long poll. */
export interface SyncWatcher {
  /**
   * The user's journal may have grown (or deliveries were interrupted): read it from your
   * cursor. Called often and with nothing new at times; never with the entries themselves,
   * because the journal, read in order from a cursor, is what makes delivery exact.
   */
  wake(): void
}

/**
 * This node's switchboard between committed changes and the clients waiting for them. After
 * a commit it wakes this node's watchers of the users concerned at once and publishes the
 * changes on the bus for the other nodes; what the bus brings from other nodes wakes the
 * watchers here. The bus follows exactly the users that have watchers on this node.
 */
export class SyncHub implements EventBusListener {
  readonly #watchers = new Map<string, Set<SyncWatcher>>()
  /** Per user, the follow/unfollow in flight, so that they reach the bus in order. */
  readonly #following = new Map<string, Promise<void>>()
  #closed = false

  constructor(
    private readonly bus: EventBus,
    private readonly onError: (error: unknown, context: string) => void = () => {},
  ) {
    bus.listen(this)
  }

  /**
   * Adds a watcher of `userId`; resolves once changes made on any node reach it, so that a
   * journal read after this cannot miss one. Answers the function that removes it.
   */
  async watch(userId: string, watcher: SyncWatcher): Promise<() => void> {
    let set = this.#watchers.get(userId)
    if (!set) {
      set = new Set()
      this.#watchers.set(userId, set)
      this.#chain(userId, () => this.bus.follow(userId))
    }
    set.add(watcher)
    await this.#following.get(userId)
    let removed = false
    return () => {
      if (removed) return
      removed = true
      const current = this.#watchers.get(userId)
      if (!current?.delete(watcher) || current.size > 0) return
      this.#watchers.delete(userId)
      this.#chain(userId, () => this.bus.unfollow(userId))
    }
  }

  /** Entries that just committed: wakes this node's watchers and tells the other nodes. */
  committed(entries: readonly JournalEntry[]): void {
    const events: ChangeEvent[] = entries.map((entry) => ({
      userId: entry.userId,
      payload: changeMessage(entry),
    }))
    for (const userId of new Set(entries.map((entry) => entry.userId))) this.#wake(userId)
    if (!this.#closed) {
      this.bus.publish(events).catch((error) => this.onError(error, 'publishing changes'))
    }
  }

  /** From the bus: another node committed a change of a user watched here. */
  change(event: ChangeEvent): void {
    this.#wake(event.userId)
  }

  /** From the bus: deliveries may have been lost, so every watcher reads its journal again. */
  resync(): void {
    for (const userId of this.#watchers.keys()) this.#wake(userId)
  }

  /** How many users and watchers this node holds (for /metrics). */
  get size(): { users: number; watchers: number } {
    let watchers = 0
    for (const set of this.#watchers.values()) watchers += set.size
    return { users: this.#watchers.size, watchers }
  }

  /** True once the node is shutting down: watchers should end (long polls answer at once). */
  get closed(): boolean {
    return this.#closed
  }

  /** Wakes every watcher one last time (they see `closed`) and lets bus calls in flight end. */
  async close(): Promise<void> {
    this.#closed = true
    this.resync()
    await Promise.allSettled(this.#following.values())
  }

  #wake(userId: string): void {
    for (const watcher of this.#watchers.get(userId) ?? []) {
      try {
        watcher.wake()
      } catch (error) {
        this.onError(error, 'waking a sync watcher')
      }
    }
  }

  #chain(userId: string, step: () => Promise<void>): void {
    const previous = this.#following.get(userId) ?? Promise.resolve()
    const next = previous
      .then(step)
      .catch((error) => this.onError(error, `following user ${userId} on the event bus`))
    this.#following.set(userId, next)
    void next.then(() => {
      if (this.#following.get(userId) === next) this.#following.delete(userId)
    })
  }
}

/** What the buffer needs of a message: its place in publish order and whose event it carries. */
export interface Unsent {
  /** Publish order: a message put back after a lost connection takes its place again by it. */
  seq: number
  userId: string
}

/** What `drain` hands over: everything to send now, and what the buffer could not keep. */
export interface Drained<T extends Unsent> {
  /** Every message kept, oldest first. */
  messages: T[]
  /** Users whose events were dropped: their followers must resync. */
  droppedUsers: string[]
  /** Events dropped whose users there was no room left to remember. */
  forgotten: number
}

/**
 * Messages waiting for the broker, at most `limit` of them: past that the oldest are dropped.
 * The port allows that (events are hints, the journal is the record) as long as whoever
 * follows a dropped event's user is told to resync, so the users of dropped events are
 * remembered, again at most `limit` of them (a long outage must not grow memory without end);
 * events of users beyond that are only counted. No I/O: the bus decides when to drain.
 */
export class UnsentBuffer<T extends Unsent> {
  readonly limit: number
  #messages: T[] = []
  readonly #droppedUsers = new Set<string>()
  #forgotten = 0

  constructor(limit: number) {
    this.limit = limit
  }

  /** How many messages wait. */
  get size(): number {
    return this.#messages.length
  }

  /** Whether events were dropped since the last drain, so that a resync is due. */
  get hasDrops(): boolean {
    return this.#droppedUsers.size > 0
  }

  /** Newly published messages: they go after everything that waits. */
  add(messages: readonly T[]): void {
    this.#messages.push(...messages)
    this.#dropOldest()
  }

  /**
   * Messages sent but never confirmed, because their connection was lost: they go back in their
   * place by `seq`, before whatever was published since, so the order of publishing holds.
   */
  putBack(messages: readonly T[]): void {
    this.#messages.push(...messages)
    this.#messages.sort((x, y) => x.seq - y.seq)
    this.#dropOldest()
  }

  /** Takes everything: the messages, the users of dropped ones and the count of forgotten ones. */
  drain(): Drained<T> {
    const drained = {
      messages: this.#messages,
      droppedUsers: [...this.#droppedUsers],
      forgotten: this.#forgotten,
    }
    this.#messages = []
    this.#droppedUsers.clear()
    this.#forgotten = 0
    return drained
  }

  /** Forgets everything, for a bus that closes. */
  clear(): void {
    this.drain()
  }

  #dropOldest(): void {
    const excess = this.#messages.length - this.limit
    if (excess <= 0) return
    for (const { userId } of this.#messages.splice(0, excess)) {
      if (this.#droppedUsers.size < this.limit) this.#droppedUsers.add(userId)
      else if (!this.#droppedUsers.has(userId)) this.#forgotten += 1
    }
  }
}

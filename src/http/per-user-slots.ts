/**
 * Connections one user holds open on this node (sync sockets, long polls), at most `max` each:
 * every one holds a socket and a watcher, so one user may not hold an unbounded number.
 */
export class PerUserSlots {
  readonly #held = new Map<string, number>()

  constructor(readonly max: number) {}

  /** Takes a slot: answers the function that gives it back (once), or null when all are taken. */
  take(userId: string): (() => void) | null {
    const held = this.#held.get(userId) ?? 0
    if (held >= this.max) return null
    this.#held.set(userId, held + 1)
    let released = false
    return () => {
      if (released) return
      released = true
      const left = (this.#held.get(userId) ?? 1) - 1
      if (left > 0) this.#held.set(userId, left)
      else this.#held.delete(userId)
    }
  }
}

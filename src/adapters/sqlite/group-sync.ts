/**
 * One sync serves every caller that asked for it before it started: a commit that ends while a
 * sync is running waits for the next one, which starts when the running one ends. Under load
 * many commits share each sync (group commit), and none waits for more than two.
 *
 * A failed sync fails every later one too: after fsync reports an error, the kernel may have
 * dropped the dirty pages, and a second fsync would report success for bytes that are gone
 * (PostgreSQL stops the server for the same reason). The process must restart and recover from
 * what is on disk.
 */
export class GroupSync {
  readonly #syncOnce: () => Promise<void>
  #running: Promise<void> | undefined
  #next: Promise<void> | undefined
  #failure: Error | undefined

  constructor(syncOnce: () => Promise<void>) {
    this.#syncOnce = syncOnce
  }

  /** Resolves once everything written before the call is on stable storage. */
  sync(): Promise<void> {
    if (this.#failure) return Promise.reject(this.#failure)
    if (!this.#running) return this.#start()
    // The running sync may have started before the caller's write: wait for one that starts after it.
    this.#next ??= this.#running.then(
      () => this.#startNext(),
      () => this.#startNext(),
    )
    return this.#next
  }

  /** The error that ended syncing for good, if one did. */
  get failure(): Error | undefined {
    return this.#failure
  }

  #startNext(): Promise<void> {
    this.#next = undefined
    return this.#failure ? Promise.reject(this.#failure) : this.#start()
  }

  #start(): Promise<void> {
    const running = this.#syncOnce().then(
      () => {
        this.#running = undefined
      },
      (error: unknown) => {
        this.#running = undefined
        this.#failure ??= new Error('the database log could not be made durable: restart the server', {
          cause: error,
        })
        throw this.#failure
      },
    )
    this.#running = running
    return running
  }
}

import argon2 from 'argon2'

export interface PasswordHashing {
  /** argon2id memory cost in KiB. OWASP's minimum for argon2id is 19 MiB with 2 passes. */
  memoryKiB: number
  passes: number
}

export const OWASP_ARGON2ID: PasswordHashing = { memoryKiB: 19 * 1024, passes: 2 }

/**
 * Hashes computed at once. Each holds its memory cost (19 MiB) while it runs and takes a core:
 * more at once finish no sooner on a server of a few cores, but a burst of logins would hold
 * that much memory per hash at once, and take all of libuv's threads, which every file-system
 * call of the uploads and downloads in flight waits for (docs/NOTES.md, issue 12: 48 logins at
 * once took the server from 116 to 409 MiB with 16 threads).
 */
const CONCURRENT_HASHES = 2

/** argon2id password hashes, with a verify that costs the same whether or not the user exists. */
export class PasswordHasher {
  private readonly decoy: Promise<string>
  #running = 0
  readonly #waiting: Array<() => void> = []

  constructor(private readonly cost: PasswordHashing = OWASP_ARGON2ID) {
    // A hash of nothing anyone knows: verified against when the email is unknown, so that an
    // unknown email takes as long as a wrong password (contract: same answer and time).
    this.decoy = this.hash(`decoy-${Math.random()}-${Date.now()}`)
  }

  hash(password: string): Promise<string> {
    return this.#limited(() =>
      argon2.hash(password, {
        type: argon2.argon2id,
        memoryCost: this.cost.memoryKiB,
        timeCost: this.cost.passes,
        parallelism: 1,
      }),
    )
  }

  /** Verifies against `hash`, or against the decoy when there is no hash; false in that case. */
  async verify(hash: string | null, password: string): Promise<boolean> {
    if (hash === null) {
      const decoy = await this.decoy
      await this.#limited(() => argon2.verify(decoy, password))
      return false
    }
    return this.#limited(() => argon2.verify(hash, password))
  }

  /** Runs `work` once fewer than CONCURRENT_HASHES are running, in the order asked. */
  async #limited<T>(work: () => Promise<T>): Promise<T> {
    if (this.#running >= CONCURRENT_HASHES) {
      await new Promise<void>((resolve) => this.#waiting.push(resolve))
    } else {
      this.#running += 1
    }
    try {
      return await work()
    } finally {
      // The slot passes straight to the next in line, if any.
      const next = this.#waiting.shift()
      if (next) next()
      else this.#running -= 1
    }
  }
}

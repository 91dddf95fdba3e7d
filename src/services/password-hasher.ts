import argon2 from 'argon2'

export interface PasswordHashing {
  /** argon2id memory cost in KiB. OWASP's minimum for argon2id is 19 MiB with 2 passes. */
  memoryKiB: number
  passes: number
}

export const OWASP_ARGON2ID: PasswordHashing = { memoryKiB: 19 * 1024, passes: 2 }

/** argon2id password hashes, with a verify that costs the same whether or not the user exists. */
export class PasswordHasher {
  private readonly decoy: Promise<string>

  constructor(private readonly cost: PasswordHashing = OWASP_ARGON2ID) {
    // A hash of nothing anyone knows: verified against when the email is unknown, so that an
    // unknown email takes as long as a wrong password (contract: same answer and time).
    this.decoy = this.hash(`decoy-${Math.random()}-${Date.now()}`)
  }

  hash(password: string): Promise<string> {
    return argon2.hash(password, {
      type: argon2.argon2id,
      memoryCost: this.cost.memoryKiB,
      timeCost: this.cost.passes,
      parallelism: 1,
    })
  }

  /** Verifies against `hash`, or against the decoy when there is no hash; false in that case. */
  async verify(hash: string | null, password: string): Promise<boolean> {
    if (hash === null) {
      await argon2.verify(await this.decoy, password)
      return false
    }
    return argon2.verify(hash, password)
  }
}

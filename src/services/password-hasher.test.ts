import { beforeEach, describe, expect, it, vi } from 'vitest'

/** argon2 replaced by calls the test finishes by hand, to see how many run at once. */
const started: Array<{ password: string; finish: () => void }> = []
vi.mock('argon2', () => {
  const run = (password: string) =>
    new Promise<string>((resolve) => started.push({ password, finish: () => resolve(`hash:${password}`) }))
  return {
    default: {
      argon2id: 2,
      hash: (password: string) => run(password),
      verify: async (_hash: string, password: string) => (await run(password)) === `hash:${password}`,
    },
  }
})

const { PasswordHasher } = await import('./password-hasher.js')
const turn = () => new Promise((resolve) => setImmediate(resolve))

describe('PasswordHasher', () => {
  beforeEach(() => {
    started.length = 0
  })

  it('runs at most two argon2 computations at once, the rest in the order asked', async () => {
    const hasher = new PasswordHasher()
    await turn()
    started.shift()?.finish() // the decoy
    const hashes = ['a', 'b', 'c', 'd', 'e'].map((password) => hasher.hash(password))
    await turn()
    expect(started.map((call) => call.password)).toEqual(['a', 'b'])
    started[1]?.finish()
    await turn()
    expect(started.map((call) => call.password)).toEqual(['a', 'b', 'c'])
    // One at a time from here: each finish lets exactly one more start.
    for (const expected of [['d'], ['e'], []]) {
      const before = started.length
      started[before - 1]?.finish()
      await turn()
      expect(started.slice(before).map((call) => call.password)).toEqual(expected)
    }
    for (const call of started) call.finish()
    expect(await Promise.all(hashes)).toEqual(['hash:a', 'hash:b', 'hash:c', 'hash:d', 'hash:e'])
  })

  it('counts verifies, of unknown emails too, against the same limit', async () => {
    const hasher = new PasswordHasher()
    await turn()
    started.shift()?.finish()
    const checks = [hasher.verify('hash:x', 'x'), hasher.verify(null, 'y'), hasher.verify('hash:z', 'z')]
    await turn()
    expect(started).toHaveLength(2)
    for (let i = 0; i < 3; i++) {
      for (const call of started) call.finish()
      await turn()
    }
    expect(await Promise.all(checks)).toEqual([true, false, true])
  })
})

import { describe, expect, it } from 'vitest'
import { MemoryRateLimitStore } from './rate-limits.js'

describe('MemoryRateLimitStore', () => {
  it('counts per key within a window and starts again after it', async () => {
    let now = 1_000
    const store = new MemoryRateLimitStore(() => now)
    expect(await store.hit('a', 60_000)).toEqual({ count: 1, msLeft: 60_000 })
    now += 59_000
    expect(await store.hit('a', 60_000)).toEqual({ count: 2, msLeft: 1_000 })
    expect(await store.hit('b', 60_000)).toEqual({ count: 1, msLeft: 60_000 })
    now += 1_000
    expect(await store.hit('a', 60_000)).toEqual({ count: 1, msLeft: 60_000 })
  })
})

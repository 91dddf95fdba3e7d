import { describe, expect, it } from 'vitest'
import { addressKey, MemoryRateLimitStore } from './rate-limits.js'

describe('addressKey', () => {
  it('keeps IPv4 addresses, mapped or not', () => {
    expect(addressKey('203.0.113.7')).toBe('203.0.113.7')
    expect(addressKey('::ffff:203.0.113.7')).toBe('203.0.113.7')
  })

  it('counts an IPv6 address as its /64, however it is written', () => {
    const key = '2001:db8:0:1::/64'
    expect(addressKey('2001:db8:0:1::1')).toBe(key)
    expect(addressKey('2001:0db8:0000:0001:ffff:ffff:ffff:ffff')).toBe(key)
    expect(addressKey('2001:db8:0:1:1:2::3%eth0')).toBe(key)
    expect(addressKey('2001:db8:0:2::1')).not.toBe(key)
    expect(addressKey('::1')).toBe('0:0:0:0::/64')
    expect(addressKey('2001:db8::')).toBe('2001:db8:0:0::/64')
  })
})

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

import { describe, expect, it } from 'vitest'
import { addressKey } from './client-address.js'

describe('addressKey', () => {
  it('keeps an IPv4 address, also when written IPv4-mapped', () => {
    expect(addressKey('203.0.113.7')).toBe('203.0.113.7')
    expect(addressKey('::ffff:203.0.113.7')).toBe('203.0.113.7')
  })

  it('keys IPv6 by its /64, however it is written', () => {
    const key = '2001:db8:0:1::/64'
    expect(addressKey('2001:db8:0:1::1')).toBe(key)
    expect(addressKey('2001:0DB8:0000:0001:ffff:ffff:ffff:ffff')).toBe(key)
    expect(addressKey('2001:db8::1:0:0:0:2')).toBe(key)
    expect(addressKey('fe80::1%eth0')).toBe('fe80:0:0:0::/64')
    expect(addressKey('64:ff9b::192.0.2.1')).toBe('64:ff9b:0:0::/64')
    expect(addressKey('::1')).toBe('0:0:0:0::/64')
    expect(addressKey('2001:db8:0:1:1:2::3%eth0')).toBe(key)
    expect(addressKey('2001:db8::')).toBe('2001:db8:0:0::/64')
    expect(addressKey('2001:db8:0:2::1')).not.toBe(key)
  })

  it('keeps what is not an address as it is', () => {
    expect(addressKey('')).toBe('')
    expect(addressKey('1::2::3')).toBe('1::2::3')
  })
})

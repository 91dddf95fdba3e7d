import { describe, expect, it } from 'vitest'
import { conflictedCopyName } from './conflicted-name.js'
import { normalizeName } from './names.js'

describe('normalizeName', () => {
  it('stores names in NFC', () => {
    expect(normalizeName('Cafe\u0301')).toBe('Caf\u00e9')
  })

  it('accepts 255 bytes of UTF-8 and refuses 256', () => {
    expect(normalizeName(`${'é'.repeat(127)}x`)).toHaveLength(128)
    expect(() => normalizeName('é'.repeat(128))).toThrow(/255 bytes/)
  })

  it.each(['', '.', '..', 'a/b', 'a\0b', '\ud800'])('refuses %j', (name) => {
    expect(() => normalizeName(name)).toThrow()
  })

  it('keeps emoji (surrogate pairs) and dots inside names', () => {
    expect(normalizeName('📷 .hidden..')).toBe('📷 .hidden..')
  })
})

describe('conflictedCopyName', () => {
  const at = new Date('2026-11-25T10:00:00Z')
  it('puts the marker before the extension', () => {
    expect(conflictedCopyName('plan.txt', at)).toBe('plan (conflicted copy 2026-11-25).txt')
    expect(conflictedCopyName('Makefile', at)).toBe('Makefile (conflicted copy 2026-11-25)')
    expect(conflictedCopyName('.bashrc', at)).toBe('.bashrc (conflicted copy 2026-11-25)')
    expect(conflictedCopyName('a.tar.gz', at, 2)).toBe('a.tar (conflicted copy 2026-11-25 2).gz')
  })

  it('stays within 255 bytes by shortening the stem', () => {
    const name = conflictedCopyName(`${'ü'.repeat(126)}.txt`, at)
    expect(Buffer.byteLength(name)).toBeLessThanOrEqual(255)
    expect(name.endsWith('(conflicted copy 2026-11-25).txt')).toBe(true)
  })
})

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
    expect(normalizeName('📷 .hidden..x')).toBe('📷 .hidden..x')
  })

  it.each([
    ['CR', 'a\rb'],
    ['LF', 'report\n.txt'],
    ['TAB', 'a\tb'],
    ['ESC', '\u001b[31mred'],
    ['DEL', 'a\u007fb'],
    ['C1 (U+0085, NEL)', 'a\u0085b'],
    ['C1 (U+009B, CSI)', 'a\u009bb'],
  ])('refuses a control character: %s', (_, name) => {
    expect(() => normalizeName(name)).toThrow(/control characters/)
  })

  it.each([
    'invoice\u202efdp.exe',
    'a\u202ab',
    'a\u202bb',
    'a\u202cb',
    'a\u202db',
    'a\u2066b',
    'a\u2067b',
    'a\u2068b',
    'a\u2069b',
    'a\u200eb',
    'a\u200fb',
    'a\u061cb',
  ])('refuses a bidirectional control: %j', (name) => {
    expect(() => normalizeName(name)).toThrow(/bidirectional controls/)
  })

  it.each([
    'rep\u200bort.pdf',
    '\u200b',
    'a\u2060b',
    '\ufeffreadme',
    'rep\u200cort.pdf',
    'rep\u200dort.pdf',
    '\u200cx',
    'x\u200d',
    '1\u200c2',
  ])('refuses a zero-width character: %j', (name) => {
    expect(() => normalizeName(name)).toThrow(/zero-width/)
  })

  it('allows joiners only where writing needs them: Persian words, Indic conjuncts, emoji', () => {
    expect(() => normalizeName('rep\u200cort.pdf')).toThrow(/zero-width/)
    for (const name of ['می\u200cخواهم.txt', 'क्\u200dष', '👩\u200d💻 notes', '👩🏽\u200d💻', '🏳️\u200d🌈']) {
      expect(normalizeName(name)).toBe(name.normalize('NFC'))
    }
  })

  it.each([
    'CON',
    'con',
    'Prn',
    'AUX',
    'nul.txt',
    'NUL.tar.gz',
    'COM1',
    'com0',
    'LPT9.log',
    'COM¹',
    'lpt³.txt',
    'CON .txt',
  ])('refuses a Windows device name: %j', (name) => {
    expect(() => normalizeName(name)).toThrow(/device name on Windows/)
  })

  it.each(['notes.', 'notes ', 'a..', 'x. '])('refuses a trailing dot or space: %j', (name) => {
    expect(() => normalizeName(name)).toThrow(/end with a dot or a space/)
  })

  it('refuses only what Windows cannot hold at all; its clients map the rest', () => {
    expect(() => normalizeName('CON')).toThrow(/device name/)
    for (const name of [
      'Meeting 10:30',
      'a<b>c',
      'say "hi"',
      'a\\b',
      'a|b',
      'what?',
      'a*b',
      ' leading space',
    ]) {
      expect(normalizeName(name)).toBe(name)
    }
    for (const name of ['CONSOLE', 'con-notes', 'COM10', 'LPT', 'nul_', 'x.con', '.CON']) {
      expect(normalizeName(name)).toBe(name)
    }
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

import { describe, expect, it } from 'vitest'
import { caseConflictName, conflictedCopyName, restoredName, shortened } from './conflicted-name.js'
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

  it('allows joiners, variation selectors and tags only where writing needs them: Persian words, Indic conjuncts, emoji, flags', () => {
    expect(() => normalizeName('rep\u200cort.pdf')).toThrow(/zero-width/)
    for (const name of [
      'می\u200cخواهم.txt',
      'क्\u200dष',
      '👩\u200d💻 notes',
      '👩🏽\u200d💻',
      '🏳️\u200d🌈',
      '\u2764\ufe0f.txt', // ❤️
      '\u{1F3F3}\ufe0f\u200d\u{1F308} pride', // 🏳️‍🌈
      '\u{1F3F4}\u{E0067}\u{E0062}\u{E0073}\u{E0063}\u{E0074}\u{E007F} trip.jpg', // 🏴 Scotland
      '\u{1F3F4}\u{E0067}\u{E0062}\u{E0065}\u{E006E}\u{E0067}\u{E007F}\u{1F3F4}\u{E0067}\u{E0062}\u{E0077}\u{E006C}\u{E0073}\u{E007F}',
      '\u845b\u{E0100}\u98fe.txt', // 葛󠄀飾: an ideographic variation sequence
      '\u1820\u180b', // Mongolian with a free variation selector
      'a\u00a0b', // no-break space: visible as a space
    ]) {
      expect(normalizeName(name)).toBe(name.normalize('NFC'))
    }
  })

  it.each(['rep\u2028ort.pdf', 'a\u2029b', '\u2028'])('refuses a line or paragraph separator: %j', (name) => {
    expect(() => normalizeName(name)).toThrow(/line or paragraph separators/)
  })

  it.each([
    ['U+00AD soft hyphen', 'rep\u00adort.pdf'],
    ['U+034F combining grapheme joiner', 'a\u034fb'],
    ['U+180E Mongolian vowel separator', 'a\u180eb'],
    ['U+2061 function application', 'a\u2061b'],
    ['U+2062 invisible times', 'a\u2062b'],
    ['U+2063 invisible separator', 'a\u2063b'],
    ['U+2064 invisible plus', 'a\u2064b'],
    ['U+206A inhibit symmetric swapping', 'a\u206ab'],
    ['U+206F nominal digit shapes', 'a\u206fb'],
    ['U+3164 Hangul filler', '\u3164'],
    ['U+FFA0 halfwidth Hangul filler', 'a\uffa0b'],
    ['U+115F Hangul choseong filler', 'a\u115fb'],
    ['U+FFF9 interlinear annotation anchor', 'a\ufff9b'],
    ['U+FFFA interlinear annotation separator', 'a\ufffab'],
    ['U+FFFB interlinear annotation terminator', 'a\ufffbb'],
    ['U+2800 braille pattern blank', '\u2800'],
    ['U+2800 inside a name', 'report\u2800.pdf'],
    ['U+1D173 musical symbol begin beam', 'a\u{1D173}b'],
    ['U+E0001 language tag', '\u{E0001}\u{E0065}\u{E006E}notes'],
    ['a tag character alone', 'a\u{E0041}b'],
    [
      'hidden text in tags',
      `invoice${[...'ignore previous'].map((c) => String.fromCodePoint(0xe0000 + c.charCodeAt(0))).join('')}.pdf`,
    ],
    ['a cancel tag alone', 'a\u{E007F}'],
    ['a flag without its cancel tag', '\u{1F3F4}\u{E0067}\u{E0062}\u{E0073}\u{E0063}\u{E0074}'],
    ['a flag with upper-case tags', '\u{1F3F4}\u{E0047}\u{E0042}\u{E0053}\u{E0043}\u{E0054}\u{E007F}'],
    [
      'a flag with tags after its cancel tag',
      '\u{1F3F4}\u{E0067}\u{E0062}\u{E0073}\u{E0063}\u{E0074}\u{E007F}\u{E0041}',
    ],
    ['tags after another emoji', '\u{1F600}\u{E0067}\u{E0062}\u{E0073}\u{E0063}\u{E0074}\u{E007F}'],
    ['a flag with a too-long tag id', `\u{1F3F4}${'\u{E0061}'.repeat(8)}\u{E007F}`],
  ])('refuses an invisible or formatting character: %s', (_, name) => {
    expect(() => normalizeName(name)).toThrow(/invisible or formatting characters/)
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
    'CONIN$',
    'conout$.txt',
    'Clock$',
    'CLOCK$.log',
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
    for (const name of [
      'CONSOLE',
      'con-notes',
      'COM10',
      'LPT',
      'nul_',
      'x.con',
      '.CON',
      'CONIN',
      'clock',
      'CLOCK$$',
      '$CONOUT',
    ]) {
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

/**
 * 255-byte names of 1-, 2-, 3- and 4-byte characters and of clusters that must not be cut,
 * each also with an "extension" too long to keep beside a marker.
 */
const FULL_NAMES: Array<[string, string[]]> = [
  ['ASCII', [`${'x'.repeat(251)}.txt`, `a.${'x'.repeat(253)}`]],
  ['Latin-1 (2 bytes)', [`${'ü'.repeat(125)}x.txt`, `ü.${'ü'.repeat(126)}`]],
  ['CJK (3 bytes)', [`${'漢'.repeat(84)}.md`, `ab.${'漢'.repeat(84)}`, '漢'.repeat(85)]],
  ['emoji (4 bytes)', [`${'😀'.repeat(63)}.gz`, `ab.${'😀'.repeat(63)}`]],
  ['emoji ZWJ sequences', [`${'👩\u200d💻'.repeat(22)}${'x'.repeat(9)}.txt`, `a.${'👩\u200d💻'.repeat(23)}`]],
  [
    'subdivision flags',
    [
      `${'🏴\u{E0067}\u{E0062}\u{E0073}\u{E0063}\u{E0074}\u{E007F}'.repeat(9)}.md`,
      `ab.${'🏴\u{E0067}\u{E0062}\u{E0073}\u{E0063}\u{E0074}\u{E007F}'.repeat(9)}`,
    ],
  ],
  ['combining marks', [`${'q\u0307'.repeat(84)}.md`, `ab.${'q\u0307'.repeat(84)}`]],
]

describe('generated names stay within 255 bytes', () => {
  const at = new Date('2026-11-25T10:00:00Z')
  const generated = (name: string) => ({
    'conflicted copy': conflictedCopyName(name, at),
    'conflicted copy 12': conflictedCopyName(name, at, 12),
    'restored file': restoredName(name, 'file'),
    'restored folder 3': restoredName(name, 'folder', 3),
    'case conflict': caseConflictName(name),
  })

  it.each(FULL_NAMES)('from 255-byte names: %s', (_, full) => {
    for (const name of full) {
      expect(Buffer.byteLength(name)).toBe(255)
      expect(normalizeName(name)).toBe(name)
      const names = generated(name)
      for (const [what, made] of Object.entries(names)) {
        expect({ what, bytes: Buffer.byteLength(made) <= 255 }).toEqual({ what, bytes: true })
        // A name the rules accept, unchanged: the item can be renamed to its own name.
        expect({ what, made: normalizeName(made) }).toEqual({ what, made })
      }
      // The marker is kept whole, and the extension with it when there is room for both.
      expect(names['conflicted copy']).toMatch(/ \(conflicted copy 2026-11-25\)(\.\w+)?$/)
      expect(names['restored folder 3'].endsWith(' (restored 3)')).toBe(true)
      const dot = name.lastIndexOf('.')
      if (dot > 0 && name.length - dot < 10)
        expect(names['restored file'].endsWith(`(restored)${name.slice(dot)}`)).toBe(true)
      // The rest is the start of the name, cut between two of its graphemes.
      const stem = names['case conflict'].slice(0, names['case conflict'].indexOf(' (case conflict)'))
      expect(name.startsWith(stem)).toBe(true)
      const clusters = [...new Intl.Segmenter('und', { granularity: 'grapheme' }).segment(name)].map(
        (s) => s.segment,
      )
      expect(clusters.some((_, i) => clusters.slice(0, i).join('') === stem)).toBe(true)
    }
  })

  it('shortens the name from the review, "a." + 253 × "x", instead of making it 284 bytes', () => {
    const copy = ' (conflicted copy 2026-11-25)'
    expect(conflictedCopyName(`a.${'x'.repeat(253)}`, at)).toBe(`a.${'x'.repeat(253 - copy.length)}${copy}`)
    const restored = ' (restored)'
    expect(restoredName(`a.${'x'.repeat(253)}`, 'file')).toBe(
      `a.${'x'.repeat(253 - restored.length)}${restored}`,
    )
  })

  it('makes NFC names from names stored before names were normalised', () => {
    const nfd = `${'e\u0301'.repeat(80)}.txt`
    const made = restoredName(nfd, 'file')
    expect(made).toBe(made.normalize('NFC'))
    expect(made).toBe(`${'é'.repeat(80)} (restored).txt`)
  })
})

describe('shortened', () => {
  it('never splits a surrogate pair, a UTF-8 sequence, or a grapheme unless it must', () => {
    expect(shortened('😀😀', 7)).toBe('😀')
    expect(shortened('漢漢', 5)).toBe('漢')
    expect(shortened('ab\u0301c', 2)).toBe('a')
    expect(shortened('x👩\u200d💻', 11)).toBe('x')
    expect(shortened('👩\u200d💻x', 11)).toBe('👩\u200d💻')
    // Between code points when not even the first grapheme fits.
    expect(shortened('👩\u200d💻x', 5)).toBe('👩')
    expect(shortened(`a${'\u0301'.repeat(5)}`, 4)).toBe('a\u0301')
  })

  it('drops a joiner the cut left with nothing to join', () => {
    expect(shortened('می\u200cخواهم', 7)).toBe('می')
    expect(shortened('می\u200cخواهم', 9)).toBe('می\u200cخ')
  })
})

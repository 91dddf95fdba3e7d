import { describe, expect, it } from 'vitest'
import { hasHiddenCharacter } from './hidden-characters.js'

describe('hasHiddenCharacter', () => {
  it.each([
    ['a control character', 'a\u0085b'],
    ['a lone surrogate', 'a\ud800b'],
    ['a line separator', 'a\u2028b'],
    ['a paragraph separator', 'a\u2029b'],
    ['a format character', 'a\u00adb'],
    ['a bidi control', 'a\u202eb'],
    ['a default-ignorable letter', 'a\u3164b'],
    ['a variation selector', 'a\ufe0fb'],
    ['a tag character', 'a\u{E0041}b'],
    ['the braille blank', 'a\u2800b'],
  ])('finds %s', (_, text) => {
    expect(hasHiddenCharacter(text)).toBe(true)
  })

  it.each(['ann@example.org', 'zoë@müller.de', '📷 a b', 'a\u00a0b'])('finds none in %j', (text) => {
    expect(hasHiddenCharacter(text)).toBe(false)
  })
})

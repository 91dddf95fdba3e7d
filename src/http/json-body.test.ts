import { describe, expect, it } from 'vitest'
import { AppError } from '../domain/errors.js'
import { MAX_JSON_DEPTH, MAX_JSON_KEYS, MAX_JSON_VALUES, parseJsonBody } from './json-body.js'

const nested = (depth: number) => `${'['.repeat(depth)}${']'.repeat(depth)}`
const codeOf = (text: string) => {
  try {
    parseJsonBody(text)
    return 'parsed'
  } catch (error) {
    return error instanceof AppError ? error.code : String(error)
  }
}

describe('parseJsonBody', () => {
  it('parses JSON, and an empty body is no body', () => {
    expect(parseJsonBody('{"proofs":{"0":"ab"}}')).toEqual({ proofs: { '0': 'ab' } })
    expect(parseJsonBody('  \n')).toBeUndefined()
  })

  it('refuses malformed JSON as INVALID_JSON', () => {
    expect(codeOf('{"a":')).toBe('INVALID_JSON')
    expect(codeOf(']]]')).toBe('INVALID_JSON')
  })

  it(`takes nesting up to ${MAX_JSON_DEPTH} deep and refuses deeper, a million deep included`, () => {
    expect(codeOf(nested(MAX_JSON_DEPTH))).toBe('parsed')
    expect(codeOf(`{"a":${nested(MAX_JSON_DEPTH - 1)}}`)).toBe('parsed')
    expect(codeOf(nested(MAX_JSON_DEPTH + 1))).toBe('INVALID_JSON')
    expect(codeOf(`{"a":${nested(MAX_JSON_DEPTH)}}`)).toBe('INVALID_JSON')
    expect(codeOf(nested(1_000_000))).toBe('INVALID_JSON')
  })

  it('does not count brackets inside strings, escaped quotes included', () => {
    const deepText = '['.repeat(10 * MAX_JSON_DEPTH)
    expect(parseJsonBody(JSON.stringify({ name: deepText }))).toEqual({ name: deepText })
    const tricky = `x\\"${deepText}`
    expect(parseJsonBody(JSON.stringify({ name: tricky }))).toEqual({ name: tricky })
  })

  it(`takes ${MAX_JSON_VALUES} values (an init of the most chunks) and refuses more`, () => {
    const list = (count: number, item: string) => `[${Array(count).fill(item).join(',')}]`
    const half = MAX_JSON_VALUES / 2 - 1
    expect(codeOf(`{"chunkHashes":${list(half, '"ab"')},"chunkSizes":${list(half, '1')}}`)).toBe('parsed')
    expect(codeOf(list(MAX_JSON_VALUES + 1, '{}'))).toBe('INVALID_JSON')
    expect(codeOf(list(2_000_000, '{}'))).toBe('INVALID_JSON')
  })

  it(`takes ${MAX_JSON_KEYS} keys (a prove of 1,024 proofs, with room) and refuses more, over all objects`, () => {
    const object = (count: number, from = 0) =>
      `{${Array.from({ length: count }, (_, i) => `"${from + i}":"x"`).join(',')}}`
    expect(codeOf(`{"proofs":${object(MAX_JSON_KEYS - 1)}}`)).toBe('parsed')
    expect(codeOf(`{"proofs":${object(MAX_JSON_KEYS)}}`)).toBe('INVALID_JSON')
    // Many objects of fewer keys each: the review's 32 objects of 4,000 keys stalled for 0.4 s.
    expect(codeOf(`[${Array.from({ length: 32 }, (_, i) => object(200, i * 200)).join(',')}]`)).toBe(
      'INVALID_JSON',
    )
    // A colon inside a string is no key.
    expect(parseJsonBody(JSON.stringify({ name: ':'.repeat(10 * MAX_JSON_KEYS) }))).toEqual({
      name: ':'.repeat(10 * MAX_JSON_KEYS),
    })
  })
})

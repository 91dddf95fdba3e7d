import { describe, expect, it } from 'vitest'
import { AppError } from '../domain/errors.js'
import { MAX_JSON_DEPTH, MAX_JSON_OBJECT_KEYS, MAX_JSON_VALUES, parseJsonBody } from './json-body.js'

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

  it(`takes objects of ${MAX_JSON_OBJECT_KEYS} keys (proofs) and refuses wider ones`, () => {
    const object = (count: number) => `{${Array.from({ length: count }, (_, i) => `"${i}":"x"`).join(',')}}`
    expect(codeOf(`{"proofs":${object(MAX_JSON_OBJECT_KEYS)}}`)).toBe('parsed')
    expect(codeOf(`{"proofs":${object(MAX_JSON_OBJECT_KEYS + 1)}}`)).toBe('INVALID_JSON')
    // Keys of nested objects count for their own object only.
    expect(codeOf(`[${Array(3).fill(object(MAX_JSON_OBJECT_KEYS)).join(',')}]`)).toBe('parsed')
  })
})

import { describe, expect, it } from 'vitest'
import { AppError } from '../domain/errors.js'
import { MAX_JSON_DEPTH, parseJsonBody } from './json-body.js'

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
})

import { MAX_CHUNKS } from '../domain/chunk-plan.js'
import { AppError } from '../domain/errors.js'

/**
 * Bounds on a request body's JSON, checked in one pass before it is parsed: JSON.parse runs on
 * the event loop, and what it costs depends on the shape more than the size (a million nested
 * arrays took a third of a second, two million empty objects half a second, 400,000 keys of one
 * object 0.4 s), so a body within the size limit could still stall every other request.
 *
 * The contract's bodies nest three deep at most (`{proofs: {"0": "…"}}`), the largest holds two
 * lists of MAX_CHUNKS values (an init's hashes and sizes), and the one with the most keys is a
 * prove of 1,024 proofs. Keys cost more than values (V8 builds a map of them), so they are bounded
 * over the whole body, not per object: 32 objects of 4,000 keys each had stalled for 0.4 s.
 */
export const MAX_JSON_DEPTH = 32
export const MAX_JSON_VALUES = 2 * MAX_CHUNKS + 1024
export const MAX_JSON_KEYS = 4096

const OPEN_ARRAY = 0x5b // [
const OPEN_OBJECT = 0x7b // {
const CLOSE_ARRAY = 0x5d // ]
const CLOSE_OBJECT = 0x7d // }
const COMMA = 0x2c // ,
const COLON = 0x3a // :
const QUOTE = 0x22 // "
const BACKSLASH = 0x5c // \

/**
 * A request body as JSON: undefined when empty (body-less POSTs such as complete may still
 * carry a JSON Content-Type); INVALID_JSON (400) when malformed or past a bound above.
 */
export function parseJsonBody(text: string): unknown {
  if (text.trim() === '') return undefined
  const tooComplex = complexityProblem(text)
  if (tooComplex) throw new AppError('INVALID_JSON', tooComplex)
  try {
    return JSON.parse(text)
  } catch {
    throw new AppError('INVALID_JSON', 'the body is not valid JSON')
  }
}

/**
 * What makes `text` too costly to parse, or null: a walk over its characters outside strings,
 * counting brackets and commas, that stops at the first bound passed. Malformed text is left to
 * JSON.parse to refuse.
 */
function complexityProblem(text: string): string | null {
  let depth = 0
  let values = 0
  let keys = 0
  let inString = false
  for (let i = 0; i < text.length; i++) {
    const code = text.charCodeAt(i)
    if (inString) {
      if (code === BACKSLASH) i++
      else if (code === QUOTE) inString = false
      continue
    }
    if (code === QUOTE) {
      inString = true
    } else if (code === OPEN_ARRAY || code === OPEN_OBJECT) {
      if (++depth > MAX_JSON_DEPTH)
        return `the body nests arrays and objects more than ${MAX_JSON_DEPTH} deep`
      values++
    } else if (code === CLOSE_ARRAY || code === CLOSE_OBJECT) {
      depth--
    } else if (code === COMMA) {
      values++
    } else if (code === COLON && ++keys > MAX_JSON_KEYS) {
      // Outside strings, a colon follows each key and nothing else.
      return `the body holds more than ${MAX_JSON_KEYS} keys`
    }
    if (values > MAX_JSON_VALUES) return `the body holds more than ${MAX_JSON_VALUES} values`
  }
  return null
}

import { AppError } from '../domain/errors.js'

/**
 * The deepest nesting of arrays and objects a request body may have. The contract's bodies
 * nest three deep at most (`{proofs: {"0": "…"}}`); V8 parses deep nesting recursively and
 * slowly (a million levels held the event loop for a third of a second), so deeper bodies are
 * refused before they are parsed.
 */
export const MAX_JSON_DEPTH = 32

const OPEN_ARRAY = 0x5b // [
const OPEN_OBJECT = 0x7b // {
const CLOSE_ARRAY = 0x5d // ]
const CLOSE_OBJECT = 0x7d // }
const QUOTE = 0x22 // "
const BACKSLASH = 0x5c // \

/**
 * A request body as JSON: undefined when empty (body-less POSTs such as complete may still
 * carry a JSON Content-Type); INVALID_JSON (400) when malformed or nested too deep.
 */
export function parseJsonBody(text: string): unknown {
  if (text.trim() === '') return undefined
  if (nestingDepth(text) > MAX_JSON_DEPTH) {
    throw new AppError('INVALID_JSON', `the body nests arrays and objects more than ${MAX_JSON_DEPTH} deep`)
  }
  try {
    return JSON.parse(text)
  } catch {
    throw new AppError('INVALID_JSON', 'the body is not valid JSON')
  }
}

/**
 * How deep the brackets of `text` nest, outside strings: one pass over the characters, which
 * stops as soon as the limit is passed. Malformed text is left to JSON.parse to refuse.
 */
function nestingDepth(text: string): number {
  let depth = 0
  let deepest = 0
  let inString = false
  for (let i = 0; i < text.length; i++) {
    const code = text.charCodeAt(i)
    if (inString) {
      if (code === BACKSLASH) i++
      else if (code === QUOTE) inString = false
    } else if (code === QUOTE) {
      inString = true
    } else if (code === OPEN_ARRAY || code === OPEN_OBJECT) {
      depth++
      if (depth > deepest) {
        deepest = depth
        if (deepest > MAX_JSON_DEPTH) return deepest
      }
    } else if (code === CLOSE_ARRAY || code === CLOSE_OBJECT) {
      depth--
    }
  }
  return deepest
}

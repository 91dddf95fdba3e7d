import path from 'node:path'
import { describe, expect, it } from 'vitest'
import { MAX_FILE_LINES, MAX_FUNCTION_LINES, oversizedCode } from '../scripts/code-size.js'

describe('code size', () => {
  it(`no production file is over ${MAX_FILE_LINES} lines, no function over ${MAX_FUNCTION_LINES}`, () => {
    const found = oversizedCode(import.meta.dirname).map(
      ({ file, what, lines }) => `${path.relative(import.meta.dirname, file)}: ${what}: ${lines} lines`,
    )
    expect(found).toEqual([])
  })
})

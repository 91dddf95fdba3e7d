import { z } from 'zod'
import { AppError } from '../../domain/errors.js'

/**
 * A zod transform that hands a field to one of the domain's own parsers (`normalizeEmail`,
 * `parseLimit`), so a schema applies the same rule, and refuses with the same words, as every
 * other entry point: the parser's INVALID_REQUEST message becomes the issue's. Anything else it
 * throws is a bug and goes on up.
 */
export function parseWith<T>(parse: (raw: unknown) => T) {
  return (raw: unknown, ctx: z.RefinementCtx): T => {
    try {
      return parse(raw)
    } catch (error) {
      if (!(error instanceof AppError) || error.code !== 'INVALID_REQUEST') throw error
      ctx.addIssue({ code: 'custom', message: error.message })
      return z.NEVER
    }
  }
}

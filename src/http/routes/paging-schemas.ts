import { z } from 'zod'
import { LIMIT_MESSAGE, pageLimitOf } from '../../services/paging.js'

/** A query parameter for which empty (`?cursor=`) means absent. */
export const optionalParameter = z
  .string()
  .optional()
  .transform((raw) => (raw === '' ? undefined : raw))

/** `limit`: 1 to MAX_PAGE_SIZE, the default page size when absent or empty. */
export const pageLimit = z
  .string({ error: LIMIT_MESSAGE })
  .optional()
  .transform((raw, context) => {
    const limit = pageLimitOf(raw)
    if (limit !== null) return limit
    context.addIssue({ code: 'custom', message: LIMIT_MESSAGE })
    return z.NEVER
  })

/**
 * The query of a paged listing, as services/paging.ts's `PageRequest`. The cursor's contents
 * are the service's to check: only it knows the sort key it encoded.
 */
export const pageQuery = { limit: pageLimit, cursor: optionalParameter }

import { z } from 'zod'
import type { Millis } from '../../domain/model.js'
import { parseRfc3339 } from '../../domain/rfc3339.js'
import { normalizeEmail } from '../../services/auth-service.js'
import { MAX_LINK_PASSWORD_LENGTH } from '../../services/share-link-service.js'
import { parseWith } from './parse-with.js'

/**
 * The latest expiry: the last millisecond of year 9999, the last that RFC 3339 (and so the
 * answer's `expiresAt`) can write; a Date goes on to year 275760 in a form no parser takes back.
 */
const MAX_DATE_MS = Date.UTC(9999, 11, 31, 23, 59, 59, 999)

const EXPIRY_MESSAGE =
  'expiresAt must be an RFC 3339 date-time (2027-01-31T12:00:00Z, a day and time that exist), or whole milliseconds since 1970 up to the end of year 9999'

/**
 * `expiresAt`: absent or null for a link that does not expire. Only RFC 3339 text: Date.parse
 * would take `2027` or an RFC 2822 date, and roll `2027-02-30` over to 2 March, an expiry nobody
 * asked for. Whether it is in the future is the service's to say (it has the clock).
 */
function parseExpiry(raw: unknown, ctx: z.RefinementCtx): Millis | null {
  if (raw === undefined || raw === null) return null
  const at =
    typeof raw === 'string' ? (parseRfc3339(raw) ?? Number.NaN) : typeof raw === 'number' ? raw : Number.NaN
  // Whole milliseconds within what a Date can hold: the database keeps a bigint, and the
  // link is presented as an ISO date-time (a larger number would be saved, then fail to list).
  if (Number.isSafeInteger(at) && Math.abs(at) <= MAX_DATE_MS) return at
  ctx.addIssue({ code: 'custom', message: EXPIRY_MESSAGE })
  return z.NEVER
}

const passwordMessage = { error: `password must be a string of 1 to ${MAX_LINK_PASSWORD_LENGTH} characters` }

/** POST /files/:id/share, POST /folders/:id/share */
export const createLinkBody = z.object({
  expiresAt: z.unknown().optional().transform(parseExpiry),
  password: z
    .string(passwordMessage)
    .min(1, passwordMessage)
    .max(MAX_LINK_PASSWORD_LENGTH, passwordMessage)
    .nullish()
    .transform((password) => password ?? null),
})

/**
 * GET /share/:token. Only the shape here: a file link answers whatever the query says, and a
 * folder link checks its password before its page, so the page size and cursor are the
 * service's to read (services/paging.ts), after it has opened the link.
 */
export const linkViewQuery = z.object({
  folderId: z.string().optional(),
  limit: z.string().optional(),
  cursor: z.string().optional(),
})

/** GET /share/:token/download */
export const linkDownloadQuery = z.object({ fileId: z.string().optional() })

/** POST /folders/:id/members: the address as accounts are registered with (`normalizeEmail`). */
export const addMemberBody = z.object({
  email: z.unknown().optional().transform(parseWith(normalizeEmail)),
  role: z.enum(['viewer', 'editor'], { error: 'role must be "viewer" or "editor"' }),
})

import { z } from 'zod'
import { decodeJournalCursor } from '../../domain/journal.js'
import { parseLimit } from '../../services/paging.js'
import { parseWith } from './parse-with.js'

export const LONGPOLL_DEFAULT_SECONDS = 30
export const LONGPOLL_MAX_SECONDS = 300

/** A journal position from a cursor this server handed out (`encodeJournalCursor`). */
function journalPosition(raw: string, ctx: z.RefinementCtx): number {
  const seq = decodeJournalCursor(raw)
  if (seq !== null) return seq
  ctx.addIssue({ code: 'custom', message: 'cursor is not one this server handed out' })
  return z.NEVER
}

const cursorMessage = { error: 'cursor is not one this server handed out' }

/** `?cursor=` of the HTTP routes: absent or empty is the start of the journal (position 0). */
const cursorFromStart = z
  .string(cursorMessage)
  .optional()
  .transform((raw, ctx) => (raw === undefined || raw === '' ? 0 : journalPosition(raw, ctx)))

/** `?timeout=` of a long poll: whole seconds, digits only (`1.5`, `1e2` and `+5` are refused). */
const timeoutMessage = `timeout must be a whole number of seconds from 1 to ${LONGPOLL_MAX_SECONDS}`
const longPollSeconds = z
  .string({ error: timeoutMessage })
  .optional()
  .transform((raw, ctx) => {
    if (raw === undefined || raw === '') return LONGPOLL_DEFAULT_SECONDS
    const seconds = /^\d{1,4}$/.test(raw) ? Number(raw) : Number.NaN
    if (seconds >= 1 && seconds <= LONGPOLL_MAX_SECONDS) return seconds
    ctx.addIssue({ code: 'custom', message: timeoutMessage })
    return z.NEVER
  })

/** GET /sync/changes */
export const changesQuery = z
  .object({ cursor: cursorFromStart, limit: z.unknown().optional().transform(parseWith(parseLimit)) })
  .transform(({ cursor, limit }) => ({ after: cursor, limit }))

/** GET /sync/longpoll */
export const longPollQuery = z
  .object({ cursor: cursorFromStart, timeout: longPollSeconds })
  .transform(({ cursor, timeout }) => ({ after: cursor, timeoutMs: timeout * 1000 }))

/**
 * `WS /sync/ws?cursor=`: absent or empty is "from now on" (undefined: the newest position),
 * unlike the HTTP routes, where it is the start of the journal.
 */
export const socketCursor = z
  .string(cursorMessage)
  .nullable()
  .transform((raw, ctx) => (raw === null || raw === '' ? undefined : journalPosition(raw, ctx)))

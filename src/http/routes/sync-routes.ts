import type { FastifyInstance } from 'fastify'
import { AppError } from '../../domain/errors.js'
import { changeMessage, encodeJournalCursor } from '../../domain/journal.js'
import type { AppServices } from '../../services/app-services.js'
import type { ChangesPage } from '../../services/sync-service.js'
import { userOf } from '../context.js'
import { PerUserSlots } from '../per-user-slots.js'
import { queryOf } from '../request-input.js'
import { changesQuery, longPollQuery } from './sync-schemas.js'

/** The change journal over HTTP (API.md, Sync); the WebSocket is in sync-socket.ts. */
export function syncRoutes(
  app: FastifyInstance,
  { services, maxLongPollsPerUser }: { services: AppServices; maxLongPollsPerUser: number },
) {
  app.get('/sync/changes', async (request) =>
    presentChanges(await services.sync.changes(userOf(request), queryOf(request, changesQuery))),
  )

  app.get('/sync/latest', async (request) => ({
    cursor: encodeJournalCursor(await services.sync.latest(userOf(request))),
  }))

  // Long polls held open on this node, per user (as with sync sockets).
  const polling = new PerUserSlots(maxLongPollsPerUser)
  app.get('/sync/longpoll', async (request, reply) => {
    const user = userOf(request)
    const release = polling.take(user.id)
    if (!release) throw new AppError('TOO_MANY_CONNECTIONS', `at most ${polling.max} long polls per user`)
    try {
      const query = queryOf(request, longPollQuery)
      // The client hanging up ends the wait (and its watcher) at once. (The response's 'close',
      // not the request's: that one fires as soon as the request has been read.)
      const gone = new AbortController()
      reply.raw.once('close', () => gone.abort())
      return { changes: await services.sync.waitForChange(user, { ...query, signal: gone.signal }) }
    } finally {
      release()
    }
  })
}

function presentChanges(page: ChangesPage) {
  return {
    changes: page.entries.map((entry) => {
      const { type: _type, ...change } = changeMessage(entry)
      return change
    }),
    cursor: encodeJournalCursor(page.cursor),
    hasMore: page.hasMore,
  }
}

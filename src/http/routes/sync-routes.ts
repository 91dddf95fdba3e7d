import type { FastifyInstance } from 'fastify'
import { AppError } from '../../domain/errors.js'
import { changeMessage, encodeJournalCursor } from '../../domain/journal.js'
import type { AppServices } from '../../services/app-services.js'
import { userOf } from '../context.js'

/** The change journal over HTTP (API.md, Sync); the WebSocket is in sync-socket.ts. */
export function syncRoutes(
  app: FastifyInstance,
  { services, maxLongPollsPerUser }: { services: AppServices; maxLongPollsPerUser: number },
) {
  // Long polls held open on this node, per user: each holds a socket and a watcher, so one
  // user may not hold more than a bound of them (as with sync sockets).
  const polling = new Map<string, number>()
  app.get('/sync/changes', async (request) => {
    const page = await services.sync.changes(userOf(request), request.query as Record<string, unknown>)
    return {
      changes: page.entries.map((entry) => {
        const { type: _type, ...change } = changeMessage(entry)
        return change
      }),
      cursor: encodeJournalCursor(page.cursor),
      hasMore: page.hasMore,
    }
  })

  app.get('/sync/latest', async (request) => ({
    cursor: encodeJournalCursor(await services.sync.latest(userOf(request))),
  }))

  app.get('/sync/longpoll', async (request, reply) => {
    const user = userOf(request)
    const held = polling.get(user.id) ?? 0
    if (held >= maxLongPollsPerUser) {
      throw new AppError('TOO_MANY_CONNECTIONS', `at most ${maxLongPollsPerUser} long polls per user`)
    }
    polling.set(user.id, held + 1)
    // The client hanging up ends the wait (and its watcher) at once. (The response's 'close',
    // not the request's: that one fires as soon as the request has been read.)
    const gone = new AbortController()
    reply.raw.once('close', () => gone.abort())
    try {
      const changes = await services.sync.waitForChange(
        user,
        request.query as Record<string, unknown>,
        gone.signal,
      )
      return { changes }
    } finally {
      const left = (polling.get(user.id) ?? 1) - 1
      if (left > 0) polling.set(user.id, left)
      else polling.delete(user.id)
    }
  })
}

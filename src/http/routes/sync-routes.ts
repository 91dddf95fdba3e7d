import type { FastifyInstance } from 'fastify'
import { changeMessage, encodeJournalCursor } from '../../domain/journal.js'
import { type AppServices, userOf } from '../context.js'

/** The change journal over HTTP (API.md, Sync); the WebSocket is in sync-socket.ts. */
export function syncRoutes(app: FastifyInstance, { services }: { services: AppServices }) {
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
    // The client hanging up ends the wait (and its watcher) at once. (The response's 'close',
    // not the request's: that one fires as soon as the request has been read.)
    const gone = new AbortController()
    reply.raw.once('close', () => gone.abort())
    const changes = await services.sync.waitForChange(
      userOf(request),
      request.query as Record<string, unknown>,
      gone.signal,
    )
    return { changes }
  })
}

import type { FastifyRequest } from 'fastify'
import { invalid } from '../domain/errors.js'

/**
 * Refuses a query string that names a parameter twice (`?folderId=a&folderId=b`). The parser
 * makes such a value an array, which the routes (expecting a string) would take for a missing
 * parameter: a listing of the root instead of either folder, a bare `GET` where a cursor was
 * meant. Which of the two the client meant is not ours to guess: 400. Also used by the sync
 * socket's handshake, which Fastify never sees.
 */
export function assertNoRepeatedParameter(url: string): void {
  const query = url.indexOf('?')
  if (query < 0) return
  const seen = new Set<string>()
  for (const name of new URLSearchParams(url.slice(query + 1)).keys()) {
    if (seen.has(name)) throw invalid(`the query parameter "${name}" is given more than once`)
    seen.add(name)
  }
}

export async function refuseRepeatedQueryParameters(request: FastifyRequest): Promise<void> {
  assertNoRepeatedParameter(request.url)
}

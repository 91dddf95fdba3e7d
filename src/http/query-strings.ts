import type { FastifyRequest } from 'fastify'
import { invalid } from '../domain/errors.js'

/**
 * Refuses a query string that names a parameter twice (`?folderId=a&folderId=b`). The parser
 * makes such a value an array, which the routes (expecting a string) would take for a missing
 * parameter: a listing of the root instead of either folder, a bare `GET` where a cursor was
 * meant. Which of the two the client meant is not ours to guess: 400.
 */
export async function refuseRepeatedQueryParameters(request: FastifyRequest): Promise<void> {
  const query = request.query as Record<string, unknown> | undefined
  if (!query) return
  for (const [name, value] of Object.entries(query)) {
    if (Array.isArray(value)) throw invalid(`the query parameter "${name}" is given more than once`)
  }
}

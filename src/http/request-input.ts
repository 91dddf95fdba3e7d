import type { FastifyRequest } from 'fastify'
import type { z } from 'zod'
import { invalid } from '../domain/errors.js'

/**
 * Request bodies and query strings are checked here, at the edge, against one zod schema per
 * route (beside the route, in `<area>-schemas.ts`), so services receive typed commands and
 * never a bag of `unknown`. What the schema checks is the shape (types, presence, ranges);
 * rules of the domain (what a name may be, what a quota allows) stay in the domain, so that
 * every entry point (HTTP today, WebDAV and tus later) applies them alike.
 *
 * A refusal is the contract's 400 INVALID_REQUEST, with the message of the first problem found:
 * a schema gives each field its own message (`z.string({ error: 'name must be a string' })`),
 * starting with the field's name; otherwise the field's path is put before zod's wording.
 */
export function parseInput<S extends z.ZodType>(schema: S, input: unknown): z.output<S> {
  const result = schema.safeParse(input)
  if (result.success) return result.data
  throw invalid(describeIssue(result.error.issues[0]))
}

/** The JSON body (an absent body reads as `{}`, for routes whose fields are all optional). */
export function bodyOf<S extends z.ZodType>(request: FastifyRequest, schema: S): z.output<S> {
  const body = request.body ?? {}
  if (typeof body !== 'object' || Array.isArray(body)) throw invalid('the body must be a JSON object')
  return parseInput(schema, body)
}

/** The query string, after `refuseRepeatedQueryParameters` has made every value a string. */
export function queryOf<S extends z.ZodType>(request: FastifyRequest, schema: S): z.output<S> {
  return parseInput(schema, request.query ?? {})
}

function describeIssue(issue: z.core.$ZodIssue | undefined): string {
  if (!issue) return 'the request is not valid'
  const field = issue.path.map(String).join('.')
  // Messages written in a schema name their field first ("name must be a string"); zod's own
  // wording ("Invalid input: expected string") needs the field put before it.
  if (!field || issue.message.startsWith(field.split('.')[0] ?? field)) return issue.message
  return `${field}: ${issue.message}`
}

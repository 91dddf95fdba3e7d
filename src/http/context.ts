import type { FastifyRequest } from 'fastify'
import { invalid, notFound } from '../domain/errors.js'
import type { User } from '../domain/model.js'
import type { Authenticated } from '../services/auth-service.js'

declare module 'fastify' {
  interface FastifyRequest {
    auth: Authenticated | null
  }
}

/** The signed-in user; routes registered behind the auth hook always have one. */
export function userOf(request: FastifyRequest): User {
  if (!request.auth) throw new Error('route reached without authentication')
  return request.auth.user
}

/** A JSON body that must be an object (possibly empty when the route takes no fields). */
export function objectBody(request: FastifyRequest): Record<string, unknown> {
  const body = request.body ?? {}
  if (typeof body !== 'object' || Array.isArray(body)) throw invalid('the body must be a JSON object')
  return body as Record<string, unknown>
}

export function param(request: FastifyRequest, name: string): string {
  return (request.params as Record<string, string>)[name] ?? ''
}

/** A version number from the path: a malformed one names no version, so it is 404 too. */
export function versionParam(request: FastifyRequest): number {
  const raw = param(request, 'version')
  if (!/^[1-9]\d{0,8}$/.test(raw)) throw notFound('version not found')
  return Number(raw)
}

import type { FastifyRequest } from 'fastify'
import { notFound } from '../domain/errors.js'
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

export function param(request: FastifyRequest, name: string): string {
  return (request.params as Record<string, string>)[name] ?? ''
}

/** A version number from the path: a malformed one names no version, so it is 404 too. */
export function versionParam(request: FastifyRequest): number {
  const raw = param(request, 'version')
  if (!/^[1-9]\d{0,8}$/.test(raw)) throw notFound('version not found')
  return Number(raw)
}

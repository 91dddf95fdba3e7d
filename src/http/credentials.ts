import type { FastifyRequest } from 'fastify'
import { SESSION_COOKIE } from './routes/auth-routes.js'

export interface Credentials {
  token: string | undefined
  /**
   * Where the token came from. A cookie rides along with any page's request, so what it
   * authenticates needs the cross-origin check (cross-origin.ts); a Bearer header is set by the
   * client itself and no other site can make a browser send it.
   */
  source: 'bearer' | 'cookie' | 'none'
}

/** The session token a request carries: its `Authorization: Bearer` value, else its `session` cookie. */
export function credentialsOf(request: FastifyRequest): Credentials {
  const bearer = bearerToken(request.headers.authorization)
  if (bearer !== undefined) return { token: bearer, source: 'bearer' }
  const cookie = request.cookies[SESSION_COOKIE]
  return cookie === undefined ? { token: undefined, source: 'none' } : { token: cookie, source: 'cookie' }
}

function bearerToken(header: string | undefined): string | undefined {
  const match = header ? /^Bearer\s+(\S+)$/i.exec(header) : null
  return match?.[1]
}

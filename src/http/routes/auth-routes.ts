import type { FastifyInstance, FastifyReply } from 'fastify'
import type { Config } from '../../config.js'
import type { AppServices } from '../../services/app-services.js'
import { userOf } from '../context.js'
import { presentUser } from '../presenters.js'
import { bodyOf } from '../request-input.js'
import { loginBody, registerBody } from './auth-schemas.js'

export const SESSION_COOKIE = 'session'

export interface AuthRouteOptions {
  services: AppServices
  /** The session lifetime (the cookie's too) and the login rate per client address. */
  auth: Pick<Config['auth'], 'sessionTtlMs' | 'loginRateLimitPerMinute'>
}

export function authRoutes(app: FastifyInstance, { services, auth }: AuthRouteOptions) {
  const { sessionTtlMs, loginRateLimitPerMinute } = auth
  // One budget per address for both: every attempt counts, whatever Authorization it carries.
  const throttled = {
    config: { public: true, addressLimit: { bucket: 'auth', perMinute: loginRateLimitPerMinute } },
  }
  const setSessionCookie = (reply: FastifyReply, token: string, secure: boolean) =>
    reply.setCookie(SESSION_COOKIE, token, {
      httpOnly: true,
      sameSite: 'lax',
      secure,
      path: '/',
      maxAge: Math.floor(sessionTtlMs / 1000),
    })

  app.post('/auth/register', throttled, async (request, reply) => {
    const { user, token } = await services.auth.register(bodyOf(request, registerBody))
    setSessionCookie(reply, token, request.protocol === 'https')
    return reply.code(201).send({ user: presentUser(user), token })
  })

  app.post('/auth/login', throttled, async (request, reply) => {
    const { user, token } = await services.auth.login(bodyOf(request, loginBody))
    setSessionCookie(reply, token, request.protocol === 'https')
    return reply.send({ user: presentUser(user), token })
  })

  app.post('/auth/logout', async (request, reply) => {
    if (request.auth) await services.auth.logout(request.auth.tokenHash)
    return reply.clearCookie(SESSION_COOKIE, { path: '/' }).code(204).send()
  })

  // Read fresh: usedBytes must be exact, and the authenticated user may be seconds old.
  app.get('/auth/me', async (request) => ({
    user: presentUser(await services.auth.currentUser(userOf(request).id)),
  }))
}

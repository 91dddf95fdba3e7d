import type { FastifyRequest } from 'fastify'
import { AppError } from '../domain/errors.js'
import { credentialsOf } from './credentials.js'

const SAFE_METHODS = new Set(['GET', 'HEAD', 'OPTIONS'])

/**
 * An onRequest hook, after authentication, against cross-site request forgery: the browser
 * sends the `session` cookie with any page's request, and SameSite=Lax does not stop a form
 * posted from a sibling subdomain, nor every browser. So a state change (any method but GET,
 * HEAD, OPTIONS) authenticated by that cookie must show it comes from this service's own
 * pages: an `Origin` (else a `Referer`) equal to the request's own `scheme://host` or to
 * PUBLIC_URL's origin, and no `Sec-Fetch-Site` saying another site. Browsers send `Origin` on
 * every such request, so one that sends neither header is refused too. Requests with
 * `Authorization: Bearer` are left alone: no other site can make a browser send that header.
 */
export function refuseCrossSiteCookieRequests(options: { publicUrl?: string }) {
  const publicOrigin = options.publicUrl === undefined ? undefined : originOf(options.publicUrl)
  return async (request: FastifyRequest): Promise<void> => {
    // Public routes (login, the link routes) are not authenticated by the cookie at all.
    if (SAFE_METHODS.has(request.method) || request.auth === null) return
    if (credentialsOf(request).source !== 'cookie') return
    const fetchSite = request.headers['sec-fetch-site']
    const claimed = header(request, 'origin') ?? header(request, 'referer')
    const origin = claimed === undefined ? undefined : originOf(claimed)
    const ownOrigin = originOf(`${request.protocol}://${request.host}`)
    const allowed =
      fetchSite !== 'cross-site' &&
      fetchSite !== 'same-site' &&
      origin !== undefined &&
      (origin === ownOrigin || origin === publicOrigin)
    if (!allowed) {
      throw new AppError(
        'FORBIDDEN',
        'a change made with the session cookie must come from this site (an Origin header of this ' +
          'origin); other clients authenticate with Authorization: Bearer',
      )
    }
  }
}

function header(request: FastifyRequest, name: string): string | undefined {
  const value = request.headers[name]
  return typeof value === 'string' && value !== '' ? value : undefined
}

/** `scheme://host[:port]` as a browser writes it (default port left out); undefined for `null` and junk. */
function originOf(url: string): string | undefined {
  try {
    const { origin } = new URL(url)
    return origin === 'null' ? undefined : origin
  } catch {
    return undefined
  }
}

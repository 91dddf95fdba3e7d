import type { IncomingMessage } from 'node:http'

/**
 * The client address of a request Fastify never sees (the sync socket's upgrade), as Fastify
 * would give it in `request.ip`: with TRUST_PROXY, the first address of X-Forwarded-For (the
 * client as the outermost proxy saw it, since every hop is trusted); else the socket's peer.
 */
export function clientIpOf(request: IncomingMessage, trustProxy: boolean): string {
  const peer = request.socket.remoteAddress ?? ''
  if (!trustProxy) return peer
  const forwarded = request.headers['x-forwarded-for']
  const first = (Array.isArray(forwarded) ? forwarded.join(',') : (forwarded ?? '')).split(',')[0]?.trim()
  return first || peer
}

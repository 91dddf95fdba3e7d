import type { Server } from 'node:http'
import type { Socket } from 'node:net'
import { addressKey } from '../domain/client-address.js'
import { STATUS } from './error-response.js'

export interface ConnectionLimitOptions {
  /** Connections open at once over all clients (Node's `server.maxConnections`); 0: no limit. */
  maxConnections: number
  /**
   * Connections one client address (IPv6: its /64) may hold open at once; 0: no limit. Not
   * applied with TRUST_PROXY: behind a proxy every connection comes from the proxy.
   */
  maxConnectionsPerAddress: number
  trustProxy: boolean
}

/**
 * Bounds the connections (file descriptors, and the bodies and sockets they can hold) one client
 * or all of them may take. One over the address's cap is answered 429 in the contract's shape,
 * before its request is read, and closed; one over the overall cap is closed by Node at once.
 */
export function limitConnections(server: Server, options: ConnectionLimitOptions): void {
  if (options.maxConnections > 0) server.maxConnections = options.maxConnections
  // Behind a proxy the socket's peer is the proxy for every client; X-Forwarded-For is only known
  // once a request arrives, so the per-address cap is left to the proxy then (README).
  if (options.maxConnectionsPerAddress <= 0 || options.trustProxy) return
  const open = new Map<string, number>()
  // Node's own listener (the HTTP parser) runs only for connections within the cap: a refused
  // one is answered here and its request is never parsed, routed or authenticated.
  const handlers = server.listeners('connection') as Array<(socket: Socket) => void>
  server.removeAllListeners('connection')
  server.on('connection', (socket: Socket) => {
    const key = addressKey(socket.remoteAddress ?? '')
    const held = open.get(key) ?? 0
    if (held >= options.maxConnectionsPerAddress) {
      refuse(socket, options.maxConnectionsPerAddress)
      return
    }
    open.set(key, held + 1)
    socket.once('close', () => {
      const left = (open.get(key) ?? 1) - 1
      if (left > 0) open.set(key, left)
      else open.delete(key)
    })
    for (const handler of handlers) handler.call(server, socket)
  })
}

function refuse(socket: Socket, cap: number): void {
  const body = JSON.stringify({
    error: { code: 'TOO_MANY_CONNECTIONS', message: `at most ${cap} connections open per client address` },
  })
  socket.on('error', () => {})
  // Whatever the client sends meanwhile is read and dropped, so the answer is not lost to a reset.
  socket.resume()
  socket.end(
    `HTTP/1.1 ${STATUS.TOO_MANY_CONNECTIONS} Too Many Requests\r\n` +
      'Content-Type: application/json; charset=utf-8\r\n' +
      `Content-Length: ${Buffer.byteLength(body)}\r\n` +
      'Retry-After: 1\r\n' +
      'Connection: close\r\n\r\n' +
      body,
  )
  // A client that never reads its answer does not keep the socket either.
  setTimeout(() => socket.destroy(), 1000).unref()
}

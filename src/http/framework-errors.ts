import { STATUS_CODES } from 'node:http'
import type { Socket } from 'node:net'
import { AppError } from '../domain/errors.js'
import { STATUS } from './error-response.js'

/**
 * Node's answer to a request it could not even parse (a bad request line, header or length,
 * headers beyond 16 KiB, a request that took too long to arrive), in the contract's shape:
 * no route, no Fastify request, so the bytes are written to the socket here, then it is closed.
 * (Fastify's own handler answers `{"error":"Bad Request","statusCode":400}`.)
 */
export function clientErrorHandler(error: Error & { code?: string }, socket: Socket): void {
  if (error.code === 'ECONNRESET' || socket.destroyed) return
  const appError = clientErrorOf(error)
  const status = STATUS[appError.code]
  const body = JSON.stringify({ error: { code: appError.code, message: appError.message } })
  // Only while no answer of a request on this connection has begun (Node's own rule).
  const inProgress = (socket as Socket & { _httpMessage?: { headersSent?: boolean } })._httpMessage
  if (socket.writable && !inProgress?.headersSent) {
    socket.write(
      `HTTP/1.1 ${status} ${STATUS_CODES[status]}\r\n` +
        'Content-Type: application/json; charset=utf-8\r\n' +
        `Content-Length: ${Buffer.byteLength(body)}\r\n` +
        'Connection: close\r\n\r\n' +
        body,
    )
  }
  socket.destroySoon()
}

function clientErrorOf(error: Error & { code?: string }): AppError {
  switch (error.code) {
    case 'HPE_HEADER_OVERFLOW':
      return new AppError('HEADERS_TOO_LARGE', 'the request line and headers are too large')
    case 'ERR_HTTP_REQUEST_TIMEOUT':
      return new AppError('REQUEST_TIMEOUT', 'the request took too long to arrive')
    default:
      return new AppError('INVALID_REQUEST', 'the request is not valid HTTP')
  }
}

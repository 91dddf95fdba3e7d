import type { FastifyError, FastifyReply, FastifyRequest } from 'fastify'
import { AppError, type ErrorCode } from '../domain/errors.js'
import { isDatabaseUnavailable } from './database-unavailable.js'

/** The only place that maps an error code to an HTTP status (a table, so none is forgotten). */
export const STATUS: Record<ErrorCode, number> = {
  INVALID_REQUEST: 400,
  INVALID_JSON: 400,
  INVALID_NAME: 400,
  HASH_MISMATCH: 400,
  CHUNK_SIZE_MISMATCH: 400,
  INVALID_CHUNK_INDEX: 400,
  PROOF_INVALID: 400,
  UNAUTHORIZED: 401,
  BAD_CREDENTIALS: 401,
  // Wrong or missing share password (API.md, Sharing).
  SHARE_PASSWORD_REQUIRED: 401,
  // The caller can see the item (a member) but may not do this to it.
  FORBIDDEN: 403,
  NOT_FOUND: 404,
  UPLOAD_NOT_FOUND: 404,
  EMAIL_TAKEN: 409,
  NAME_TAKEN: 409,
  MOVE_INTO_SELF: 409,
  // Items move only within one owner's tree (into or out of someone else's shared folder: copy).
  MOVE_ACROSS_OWNERS: 409,
  CHUNKS_MISSING: 409,
  // The journal no longer holds what follows the cursor: list from scratch (API.md, Sync).
  CURSOR_EXPIRED: 410,
  // The request body made no progress for BODY_IDLE_TIMEOUT_SECONDS (request-bodies.ts).
  REQUEST_TIMEOUT: 408,
  PAYLOAD_TOO_LARGE: 413,
  UNSUPPORTED_MEDIA_TYPE: 415,
  RANGE_NOT_SATISFIABLE: 416,
  // Request line and headers beyond Node's limit (16 KiB), answered by framework-errors.ts.
  HEADERS_TOO_LARGE: 431,
  RATE_LIMITED: 429,
  // More sync sockets of one user on this node than it allows.
  TOO_MANY_CONNECTIONS: 429,
  // More open upload sessions of one user than it allows: complete or abort one first.
  TOO_MANY_UPLOADS: 429,
  // nginx's code for "client closed the connection": aborted uploads are routine, not 500s.
  CLIENT_CLOSED_REQUEST: 499,
  INTERNAL: 500,
  NOT_READY: 503,
  // The database cannot be reached (down, restarting, out of connections): try again shortly.
  SERVICE_UNAVAILABLE: 503,
  // The chunk is being removed by the garbage collector this instant: upload it again shortly.
  CHUNK_BUSY: 503,
  // The chunk store failed to read or write (EIO): never taken for a missing chunk.
  STORAGE_ERROR: 500,
  // Stored bytes of the file were found wrong or gone (and marked damaged): an upload of the
  // same content repairs them. Known before the headers, so never a 200 with a short body.
  CONTENT_DAMAGED: 500,
  // The chunk store's disk is full (ENOSPC), as opposed to the user's quota.
  STORAGE_FULL: 507,
  QUOTA_EXCEEDED: 507,
}

const CLIENT_GONE = new Set(['ECONNRESET', 'EPIPE', 'ERR_STREAM_PREMATURE_CLOSE', 'ECONNABORTED'])

/** How long a client is told to wait when the database cannot be reached. */
const UNAVAILABLE_RETRY_SECONDS = 5

/**
 * Turns anything thrown into the contract's error, so no framework detail reaches clients.
 * `clientConnected`: the caller knows the client is still there, so a reset or broken pipe
 * came from a connection of ours (the database's), not from the client.
 */
export function toAppError(error: unknown, clientConnected = false): AppError {
  if (error instanceof AppError) return error
  const e = error as Partial<FastifyError> & { code?: string }
  if (e.code && CLIENT_GONE.has(e.code) && !clientConnected)
    return new AppError('CLIENT_CLOSED_REQUEST', 'the client went away')
  if (isDatabaseUnavailable(error)) {
    return new AppError('SERVICE_UNAVAILABLE', 'the database cannot be reached; try again shortly', {
      retryAfterSeconds: UNAVAILABLE_RETRY_SECONDS,
    })
  }
  if (e.code === 'ENOSPC' || e.code === 'EDQUOT')
    return new AppError('STORAGE_FULL', 'the server has no room left to store this; try again later')
  if (e.code === 'EIO') return new AppError('STORAGE_ERROR', 'the server could not read or write its storage')
  if (e.code === 'FST_ERR_CTP_BODY_TOO_LARGE')
    return new AppError('PAYLOAD_TOO_LARGE', 'the request body is too large')
  if (e.code === 'FST_ERR_CTP_INVALID_MEDIA_TYPE') {
    return new AppError('UNSUPPORTED_MEDIA_TYPE', 'send the body as application/json')
  }
  if (e.code === 'FST_ERR_CTP_INVALID_CONTENT_LENGTH')
    return new AppError('INVALID_REQUEST', e.message ?? 'bad length')
  // No id, token or index is anywhere near maxParamLength (100) characters long.
  if (e.code === 'FST_ERR_MAX_PARAM_LENGTH') return new AppError('NOT_FOUND', 'no such item')
  if (e.code === 'FST_ERR_BAD_URL') return new AppError('INVALID_REQUEST', 'the URL is not validly encoded')
  if (e.statusCode === 429) return new AppError('RATE_LIMITED', 'too many requests, slow down')
  if (e.statusCode === 404) return new AppError('NOT_FOUND', 'no such route')
  if (e.statusCode && e.statusCode >= 400 && e.statusCode < 500) {
    return new AppError('INVALID_REQUEST', e.message ?? 'bad request')
  }
  return new AppError('INTERNAL', 'internal error')
}

export function sendError(error: unknown, request: FastifyRequest, reply: FastifyReply): void {
  const appError = toAppError(error, !request.raw.socket?.destroyed)
  const status = STATUS[appError.code]
  // A full quota is the user's business, not a fault of the server (a full disk is).
  if (status >= 500 && appError.code !== 'QUOTA_EXCEEDED') request.log.error({ err: error }, 'request failed')
  else if (appError.code === 'QUOTA_EXCEEDED') request.log.info({ code: appError.code }, 'quota exceeded')
  else if (appError.code === 'CLIENT_CLOSED_REQUEST')
    request.log.info({ code: appError.code }, 'client went away')
  if (reply.sent || reply.raw.headersSent) {
    // Headers are out (a download that failed midway): all we can do is cut the connection,
    // so the client sees a truncated body instead of a silently short one.
    reply.raw.destroy()
    return
  }
  // A chunk the collector is removing this instant can be sent again a moment later.
  if (appError.code === 'CHUNK_BUSY') reply.header('Retry-After', '1')
  const { retryAfterSeconds } = appError.details
  if (typeof retryAfterSeconds === 'number') reply.header('Retry-After', String(retryAfterSeconds))
  const message = status >= 500 && appError.code === 'INTERNAL' ? 'internal error' : appError.message
  // `missing` and the like are also repeated at the top level, where simple clients look first.
  reply
    .code(status)
    .type('application/json; charset=utf-8')
    .send({ error: { code: appError.code, message, ...appError.details }, ...appError.details })
}

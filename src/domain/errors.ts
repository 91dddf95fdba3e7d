/**
 * Every failure a caller can be told about. The HTTP status for each code lives in
 * http/error-response.ts and nowhere else, so the domain never speaks HTTP.
 */
export type ErrorCode =
  | 'INVALID_REQUEST'
  | 'INVALID_JSON'
  | 'INVALID_NAME'
  | 'PAYLOAD_TOO_LARGE'
  | 'REQUEST_TIMEOUT'
  | 'HEADERS_TOO_LARGE'
  | 'UNSUPPORTED_MEDIA_TYPE'
  | 'UNAUTHORIZED'
  | 'BAD_CREDENTIALS'
  | 'EMAIL_TAKEN'
  | 'NOT_FOUND'
  | 'FORBIDDEN'
  | 'SHARE_PASSWORD_REQUIRED'
  | 'MOVE_ACROSS_OWNERS'
  | 'NAME_TAKEN'
  | 'MOVE_INTO_SELF'
  | 'UPLOAD_NOT_FOUND'
  | 'HASH_MISMATCH'
  | 'CHUNK_SIZE_MISMATCH'
  | 'INVALID_CHUNK_INDEX'
  | 'PROOF_INVALID'
  | 'CHUNKS_MISSING'
  | 'QUOTA_EXCEEDED'
  | 'RANGE_NOT_SATISFIABLE'
  | 'RATE_LIMITED'
  | 'CLIENT_CLOSED_REQUEST'
  | 'NOT_READY'
  | 'SERVICE_UNAVAILABLE'
  | 'CHUNK_BUSY'
  | 'STORAGE_FULL'
  | 'STORAGE_ERROR'
  | 'CONTENT_DAMAGED'
  | 'CURSOR_EXPIRED'
  | 'TOO_MANY_CONNECTIONS'
  | 'TOO_MANY_UPLOADS'
  | 'INTERNAL'

export class AppError extends Error {
  override readonly name = 'AppError'

  constructor(
    readonly code: ErrorCode,
    message: string,
    /** Extra fields that go into the error body next to code and message (e.g. `missing`). */
    readonly details: Record<string, unknown> = {},
  ) {
    super(message)
  }
}

export const notFound = (what = 'Not found'): AppError => new AppError('NOT_FOUND', what)

export const invalid = (message: string, details?: Record<string, unknown>): AppError =>
  new AppError('INVALID_REQUEST', message, details)

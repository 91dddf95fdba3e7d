/**
 * Errors that say the database cannot serve right now, as opposed to a bug or a bad query:
 * clients should try again shortly (503 with Retry-After), and operators see the outage in
 * /readyz. Recognised by what the drivers report, since neither wraps them in a type of its own.
 */

/** SQLSTATE classes and codes of a server that is going away, starting or out of room for us. */
const POSTGRES_UNAVAILABLE = [
  /^08/, // connection exception (08000, 08003, 08006, 08001, 08004, 08P01)
  /^57P0[1-3]$/, // admin_shutdown, crash_shutdown, cannot_connect_now
  /^53300$/, // too_many_connections
  /^53400$/, // configuration_limit_exceeded
]

/** Socket-level failures of the connection to the database (never the client's: see caller). */
const NETWORK = new Set(['ECONNREFUSED', 'ECONNRESET', 'EPIPE', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENOTFOUND'])

/** pg's and Kysely's own wording for a connection lost or never made. */
const MESSAGES = [
  /^Connection terminated/, // pg: the server or the network closed the connection
  /^timeout exceeded when trying to connect/, // pg Pool: connectionTimeoutMillis
  /^Query read timeout/, // pg: query_timeout, no answer on an open connection
  /^Client was closed and is not queryable/,
  /^Client has encountered a connection error and is not queryable/,
  /^Cannot use a pool after calling end on the pool/,
  /^the database system is (shutting down|starting up|in recovery mode)/,
]

export function isDatabaseUnavailable(error: unknown): boolean {
  if (typeof error !== 'object' || error === null) return false
  const { code, message } = error as { code?: unknown; message?: unknown }
  if (typeof code === 'string') {
    if (code.startsWith('SQLITE_BUSY')) return true
    if (/^[0-9A-Z]{5}$/.test(code) && POSTGRES_UNAVAILABLE.some((pattern) => pattern.test(code))) return true
    if (NETWORK.has(code)) return true
  }
  return typeof message === 'string' && MESSAGES.some((pattern) => pattern.test(message))
}

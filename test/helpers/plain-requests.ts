import { randomBytes } from 'node:crypto'
import type { Kysely } from 'kysely'
import type { Database } from '../../src/adapters/sql/schema.js'
import type { TestServer } from './test-server.js'

export interface PlainReply {
  status: number
  body: any
}

/**
 * One request with Node's own `fetch` and nothing else (no ApiClient): what the race tests
 * fire many of at once, as independent clients would. A JSON body is sent as JSON; a string
 * as it is (with a JSON content type).
 */
export async function plainRequest(
  api: string,
  method: string,
  path: string,
  token: string | undefined,
  body?: unknown,
): Promise<PlainReply> {
  const headers: Record<string, string> = {}
  if (token) headers.authorization = `Bearer ${token}`
  let payload: string | undefined
  if (body !== undefined) {
    headers['content-type'] = 'application/json'
    payload = typeof body === 'string' ? body : JSON.stringify(body)
  }
  const response = await fetch(api + path, { method, headers, body: payload })
  const text = await response.text()
  const type = response.headers.get('content-type') ?? ''
  return { status: response.status, body: type.includes('json') && text.length > 0 ? JSON.parse(text) : text }
}

/** `count` lowercase hex SHA-256-shaped strings, random (hashes of chunks nobody stores). */
export function randomHashes(count: number): string[] {
  const hex = randomBytes(32 * count).toString('hex')
  return Array.from({ length: count }, (_, i) => hex.slice(64 * i, 64 * (i + 1)))
}

/**
 * The server's own Kysely handle (SqlMetadataStore keeps it in a private field), for the few
 * checks no API shows: "no upload session was left behind". Read-only use, please.
 */
export function databaseOf(server: TestServer): Kysely<Database> {
  const db = (server.services.meta as unknown as { db?: Kysely<Database> }).db
  if (!db) throw new Error('the metadata store has no SQL handle (is it a SqlMetadataStore?)')
  return db
}

/** Upload sessions (open or completed) of one user, and the chunk rows they declare. */
export async function uploadRowsOf(
  server: TestServer,
  userId: string,
): Promise<{ sessions: number; chunks: number }> {
  const db = databaseOf(server)
  const sessions = await db
    .selectFrom('uploads')
    .select((eb) => eb.fn.countAll<number>().as('n'))
    .where('user_id', '=', userId)
    .executeTakeFirstOrThrow()
  const chunks = await db
    .selectFrom('upload_chunks')
    .innerJoin('uploads', 'uploads.id', 'upload_chunks.upload_id')
    .select((eb) => eb.fn.countAll<number>().as('n'))
    .where('uploads.user_id', '=', userId)
    .executeTakeFirstOrThrow()
  return { sessions: Number(sessions.n), chunks: Number(chunks.n) }
}

export { forEachConcurrently } from './lanes.js'

import { createHash } from 'node:crypto'
import type { Readable } from 'node:stream'
import { type Dispatcher, request } from 'undici'

export const API_PREFIX = '/api/v1'

export const sha256Hex = (bytes: Uint8Array): string => createHash('sha256').update(bytes).digest('hex')

export interface UploadSession {
  uploadId: string
  chunkSize: number
  totalChunks: number
  chunksNeeded: number[]
  chunksToProve: number[]
  proofNonce: string
}

/**
 * A minimal Tessera API client over undici (keep-alive connections from `dispatcher`), as a
 * sync client would talk to the server: JSON in and out, raw bytes for chunks.
 */
export class Tessera {
  constructor(
    /** e.g. http://127.0.0.1:8080 (without /api/v1) */
    readonly base: string,
    readonly token: string,
    readonly dispatcher: Dispatcher,
  ) {}

  async json<T>(method: Dispatcher.HttpMethod, path: string, body: unknown, expect: number): Promise<T> {
    const headers: Record<string, string> = { authorization: `Bearer ${this.token}` }
    if (body !== undefined) headers['content-type'] = 'application/json'
    const response = await request(this.base + API_PREFIX + path, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      dispatcher: this.dispatcher,
    })
    const text = await response.body.text()
    if (response.statusCode !== expect) {
      throw new Error(
        `${method} ${path}: expected ${expect}, got ${response.statusCode} ${text.slice(0, 500)}`,
      )
    }
    return (text === '' ? undefined : JSON.parse(text)) as T
  }

  init(input: { filename: string; size: number; chunkHashes: string[]; folderId?: string | null }) {
    return this.json<UploadSession>('POST', '/upload/init', input, 201)
  }

  async putChunk(uploadId: string, index: number, hash: string, size: number, body: Readable | Buffer) {
    const response = await request(`${this.base}${API_PREFIX}/upload/${uploadId}/chunk/${index}`, {
      method: 'PUT',
      headers: {
        authorization: `Bearer ${this.token}`,
        'content-type': 'application/octet-stream',
        'content-length': String(size),
        'x-chunk-hash': hash,
      },
      body,
      dispatcher: this.dispatcher,
    })
    const text = await response.body.text()
    if (response.statusCode !== 200) {
      throw new Error(`PUT chunk ${index}: expected 200, got ${response.statusCode} ${text.slice(0, 500)}`)
    }
    return JSON.parse(text) as { index: number; hash: string; deduplicated: boolean }
  }

  complete(uploadId: string) {
    return this.json<{ file: { id: string; size: number; contentHash: string } }>(
      'POST',
      `/upload/${uploadId}/complete`,
      undefined,
      201,
    )
  }
}

export async function postJson<T>(base: string, route: string, body: unknown, expect: number): Promise<T> {
  const response = await request(`${base}${API_PREFIX}${route}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
  })
  const text = await response.body.text()
  if (response.statusCode !== expect) throw new Error(`POST ${route}: ${response.statusCode} ${text}`)
  return JSON.parse(text) as T
}

/** Every benchmark account's password. */
export const PASSWORD = 'benchmark password 1'

export interface Account {
  user: { id: string }
  token: string
}

/** Registers `email` on the server at `base` (the password hash, argon2id, is deliberately slow). */
export const register = (base: string, email: string): Promise<Account> =>
  postJson<Account>(base, '/auth/register', { email, password: PASSWORD }, 201)

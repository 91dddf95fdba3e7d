import { createHash, createHmac, randomBytes } from 'node:crypto'

export const MiB = 1024 * 1024
export const CHUNK = 4 * MiB

export const sha256 = (bytes: Uint8Array): string => createHash('sha256').update(bytes).digest('hex')

export function chunksOf(bytes: Buffer, size = CHUNK): Buffer[] {
  const chunks: Buffer[] = []
  for (let offset = 0; offset < bytes.length; offset += size)
    chunks.push(bytes.subarray(offset, offset + size))
  return chunks
}

export const hmac = (nonceHex: string, bytes: Uint8Array): string =>
  createHmac('sha256', Buffer.from(nonceHex, 'hex')).update(bytes).digest('hex')

export interface Reply<T = any> {
  status: number
  body: T
  headers: Headers
}

/** A thin HTTP client for the API, as an outside client would use it. */
export class ApiClient {
  token: string | undefined
  user: any

  constructor(readonly api: string) {}

  async request<T = any>(
    method: string,
    path: string,
    body?: unknown,
    headers: Record<string, string> = {},
  ): Promise<Reply<T>> {
    const init: RequestInit & { duplex?: string } = { method, headers: { ...headers } }
    const h = init.headers as Record<string, string>
    if (this.token && !h.authorization) h.authorization = `Bearer ${this.token}`
    if (body instanceof Uint8Array) {
      init.body = body
      h['content-type'] ??= 'application/octet-stream'
    } else if (body !== undefined) {
      init.body = typeof body === 'string' ? body : JSON.stringify(body)
      h['content-type'] ??= 'application/json'
    }
    const response = await fetch(this.api + path, init)
    const text = Buffer.from(await response.arrayBuffer())
    const type = response.headers.get('content-type') ?? ''
    const parsed = type.includes('json') && text.length > 0 ? JSON.parse(text.toString('utf8')) : text
    return { status: response.status, body: parsed as T, headers: response.headers }
  }

  get = <T = any>(path: string, headers?: Record<string, string>) =>
    this.request<T>('GET', path, undefined, headers)
  post = <T = any>(path: string, body?: unknown) => this.request<T>('POST', path, body)
  patch = <T = any>(path: string, body?: unknown) => this.request<T>('PATCH', path, body)
  delete = <T = any>(path: string) => this.request<T>('DELETE', path)

  /** Registers a fresh account and keeps its token. */
  async register(
    email = `u-${randomBytes(6).toString('hex')}@example.com`,
    password = 'correct horse battery',
  ): Promise<this> {
    const reply = await this.post('/auth/register', { email, password })
    if (reply.status !== 201)
      throw new Error(`register failed: ${reply.status} ${JSON.stringify(reply.body)}`)
    this.token = reply.body.token
    this.user = reply.body.user
    return this
  }

  init(filename: string, bytes: Buffer, extra: Record<string, unknown> = {}) {
    const chunkHashes = chunksOf(bytes).map(sha256)
    return this.post('/upload/init', { filename, size: bytes.length, chunkHashes, ...extra })
  }

  putChunk(uploadId: string, index: number, bytes: Buffer, hash = sha256(bytes)) {
    return this.request('PUT', `/upload/${uploadId}/chunk/${index}`, bytes, { 'x-chunk-hash': hash })
  }

  /** init, the chunks the server asks for (proving the ones it asks proof for), complete. */
  async upload(filename: string, bytes: Buffer, extra: Record<string, unknown> = {}): Promise<any> {
    const init = await this.init(filename, bytes, extra)
    if (init.status !== 201) throw new Error(`init failed: ${init.status} ${JSON.stringify(init.body)}`)
    const chunks = chunksOf(bytes)
    for (const index of init.body.chunksNeeded as number[]) {
      const put = await this.putChunk(init.body.uploadId, index, chunks[index] as Buffer)
      if (put.status !== 200)
        throw new Error(`chunk ${index} failed: ${put.status} ${JSON.stringify(put.body)}`)
    }
    const toProve = init.body.chunksToProve as number[]
    if (toProve.length > 0) {
      const proofs = Object.fromEntries(
        toProve.map((i) => [i, hmac(init.body.proofNonce, chunks[i] as Buffer)]),
      )
      const proved = await this.post(`/upload/${init.body.uploadId}/prove`, { proofs })
      if (proved.status !== 200)
        throw new Error(`prove failed: ${proved.status} ${JSON.stringify(proved.body)}`)
    }
    const done = await this.post(`/upload/${init.body.uploadId}/complete`)
    if (done.status !== 201) throw new Error(`complete failed: ${done.status} ${JSON.stringify(done.body)}`)
    return done.body.file
  }

  async download(fileId: string, headers?: Record<string, string>): Promise<Reply<Buffer>> {
    return this.get<Buffer>(`/files/${fileId}/download`, headers)
  }

  /** The account's `usedBytes`, as GET /auth/me answers it. */
  async usedBytes(): Promise<number> {
    const me = await this.get('/auth/me')
    if (me.status !== 200) throw new Error(`GET /auth/me answered ${me.status} ${JSON.stringify(me.body)}`)
    return me.body.user.usedBytes
  }

  /** The SHA-256 of the file's current content as downloaded (failing unless the answer is 200). */
  async downloadedHash(fileId: string): Promise<string> {
    const reply = await this.download(fileId)
    if (reply.status !== 200) throw new Error(`download of ${fileId} answered ${reply.status}`)
    return sha256(reply.body)
  }
}

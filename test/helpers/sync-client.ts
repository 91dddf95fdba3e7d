import { WebSocket } from 'ws'
import type { ApiClient } from './api-client.js'

/** A message the sync socket sent, parsed. */
export type SyncMessage = { type: string; cursor?: string; [field: string]: any }

/**
 * A device listening on `WS /sync/ws`, as a client would: collects every message, and waits
 * for the ones a test expects (with a deadline, never a fixed sleep).
 */
export class SyncSocket {
  readonly messages: SyncMessage[] = []
  closed: { code: number; reason: string } | null = null
  #waiters: (() => void)[] = []

  private constructor(readonly ws: WebSocket) {
    ws.on('message', (data) => {
      this.messages.push(JSON.parse(data.toString()) as SyncMessage)
      this.#notify()
    })
    ws.on('close', (code, reason) => {
      this.closed = { code, reason: reason.toString() }
      this.#notify()
    })
    ws.on('error', () => {})
  }

  /** Opens a socket for `client`'s token (as `?token=` unless told otherwise) from `cursor`. */
  static async open(
    client: ApiClient,
    options: { cursor?: string; auth?: 'query' | 'header' | 'none'; headers?: Record<string, string> } = {},
  ): Promise<SyncSocket> {
    const url = new URL(`${client.api.replace(/^http/, 'ws')}/sync/ws`)
    const auth = options.auth ?? 'query'
    if (auth === 'query' && client.token) url.searchParams.set('token', client.token)
    if (options.cursor !== undefined) url.searchParams.set('cursor', options.cursor)
    const headers: Record<string, string> = { ...options.headers }
    if (auth === 'header' && client.token) headers.authorization = `Bearer ${client.token}`
    const ws = new WebSocket(url, { headers })
    const socket = new SyncSocket(ws)
    await new Promise<void>((resolve, reject) => {
      ws.once('open', () => resolve())
      ws.once('unexpected-response', (_request, response) => {
        const error = new Error(`handshake refused: ${response.statusCode}`) as Error & { status?: number }
        error.status = response.statusCode
        reject(error)
      })
      ws.once('error', reject)
    })
    return socket
  }

  /** The changes received so far (messages of type "change"). */
  get changes(): SyncMessage[] {
    return this.messages.filter((message) => message.type === 'change')
  }

  /** Resolves once `predicate` holds over what was received; rejects after `timeoutMs`. */
  async waitFor(
    predicate: (socket: SyncSocket) => boolean,
    timeoutMs = 5000,
    what = 'a condition',
  ): Promise<void> {
    const deadline = Date.now() + timeoutMs
    while (!predicate(this)) {
      const left = deadline - Date.now()
      if (left <= 0) {
        throw new Error(
          `timed out waiting for ${what}; received: ${JSON.stringify(this.messages).slice(0, 2000)}; closed: ${JSON.stringify(this.closed)}`,
        )
      }
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left)
        this.#waiters.push(() => {
          clearTimeout(timer)
          resolve()
        })
      })
    }
  }

  /** Waits until `count` changes have arrived in all. */
  waitForChanges(count: number, timeoutMs = 5000): Promise<void> {
    return this.waitFor((s) => s.changes.length >= count, timeoutMs, `${count} changes`)
  }

  waitForClose(timeoutMs = 5000): Promise<void> {
    return this.waitFor((s) => s.closed !== null, timeoutMs, 'the socket to close')
  }

  /** The cursor of the last change (or of the hello) received. */
  get lastCursor(): string | undefined {
    return this.messages.filter((message) => message.cursor !== undefined).at(-1)?.cursor
  }

  close(): Promise<void> {
    if (this.closed) return Promise.resolve()
    this.ws.close()
    return this.waitForClose()
  }

  #notify(): void {
    const waiters = this.#waiters
    this.#waiters = []
    for (const wake of waiters) wake()
  }
}

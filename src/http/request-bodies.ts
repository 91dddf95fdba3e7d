import type { IncomingMessage } from 'node:http'
import { Readable } from 'node:stream'
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import { AppError } from '../domain/errors.js'

export interface RequestBodyOptions {
  /** A body that sends nothing for this long while it is being read is answered 408. */
  idleTimeoutMs: number
  /**
   * A body left unread by an early answer (a rejected chunk) is read and dropped up to this
   * declared size, so that the client hears the answer; a larger one has its connection closed,
   * as has one whose rest does not arrive within `idleTimeoutMs` in all.
   */
  drainLimitBytes: number
}

/**
 * How request bodies are taken in, whatever the route:
 *
 * - `100 Continue` goes out only when a handler first reads the body, so never before the
 *   request is authenticated (Node would send it on arrival).
 * - A body that makes no progress for `idleTimeoutMs` while it is read fails with
 *   REQUEST_TIMEOUT (408); the reader (a chunk upload) removes what it wrote.
 * - A request answered before its body was read keeps its connection and has the rest of its
 *   body read and dropped (bounded in size, and in time: `idleTimeoutMs` for the whole rest). Closing at once would leave bytes
 *   unread in the socket, and the kernel then resets the connection, often before the client
 *   has read the answer: it would see EPIPE or ECONNRESET instead of its 401 or 400.
 *
 * Routes get the body as the parser's payload (`request.body` for raw routes), not `request.raw`.
 */
export function guardRequestBodies(app: FastifyInstance, options: RequestBodyOptions): void {
  const watched = new WeakMap<IncomingMessage, WatchedBody>()
  app.server.on('checkContinue', (request, response) => app.server.emit('request', request, response))

  app.addHook('preParsing', async (request, reply, payload) => {
    if (!hasBody(request.raw)) return payload
    const body = new WatchedBody(request.raw, options.idleTimeoutMs, () => {
      if (expectsContinue(request.raw)) reply.raw.writeContinue()
    })
    watched.set(request.raw, body)
    return body
  })

  app.addHook('onSend', async (request, reply, payload) => {
    if (!request.raw.complete && hasBody(request.raw)) {
      const body = watched.get(request.raw)
      body?.detach()
      settleUnreadBody(request, reply, body, options)
    }
    return payload
  })
}

function settleUnreadBody(
  request: FastifyRequest,
  reply: FastifyReply,
  body: WatchedBody | undefined,
  options: RequestBodyOptions,
): void {
  const raw = request.raw
  // Asked to wait for 100 Continue and never told to send: Node closes the connection itself,
  // and the client (told the answer first) sends nothing.
  if (expectsContinue(raw) && !body?.continued) return
  const declared = Number(raw.headers['content-length'])
  const bounded = Number.isSafeInteger(declared) && declared <= options.drainLimitBytes
  if (!bounded || body?.timedOut) {
    // A stalled client, or more bytes than are worth taking to be polite: close after the answer.
    reply.header('connection', 'close')
    return
  }
  // Fastify asks for close on parser errors (a body too large, invalid JSON); draining keeps
  // the connection in step instead.
  reply.removeHeader('connection')
  raw.unpipe()
  // One deadline for the whole drain, never pushed back by the bytes that arrive: a client
  // trickling the rest of a refused body (a byte now and then) would otherwise hold the
  // connection forever. The answer is out; past the deadline the connection is cut.
  const timer = setTimeout(() => raw.destroy(), options.idleTimeoutMs)
  const stop = () => clearTimeout(timer)
  raw.once('end', stop)
  raw.once('close', stop)
  raw.resume()
}

function hasBody(raw: IncomingMessage): boolean {
  const length = raw.headers['content-length']
  return raw.headers['transfer-encoding'] !== undefined || (length !== undefined && length !== '0')
}

function expectsContinue(raw: IncomingMessage): boolean {
  return /^100-continue$/i.test(raw.headers.expect ?? '')
}

/**
 * The request body as its reader sees it: `source`'s bytes, read only when asked for (the
 * first read calls `onFirstRead`), failing with REQUEST_TIMEOUT when none arrive for
 * `idleTimeoutMs` while the reader waits. The source is never destroyed here: that would
 * reset the connection before the 408 goes out.
 */
class WatchedBody extends Readable {
  readonly #source: IncomingMessage
  readonly #idleTimeoutMs: number
  readonly #onFirstRead: () => void
  #timer: NodeJS.Timeout | undefined
  #started = false
  #continued = false
  #timedOut = false

  constructor(source: IncomingMessage, idleTimeoutMs: number, onFirstRead: () => void) {
    super()
    this.#source = source
    this.#idleTimeoutMs = idleTimeoutMs
    this.#onFirstRead = onFirstRead
    // Readers attach their own listeners; this one keeps a failure after they are gone (a
    // timeout while the rest of a rejected body is dropped) from crashing the process.
    this.on('error', () => {})
  }

  /** Whether the reader asked for the body (and so a 100 Continue went out if expected). */
  get continued(): boolean {
    return this.#continued
  }

  get timedOut(): boolean {
    return this.#timedOut
  }

  override _read(): void {
    if (!this.#started) {
      this.#started = true
      this.#continued = true
      this.#onFirstRead()
      this.#source.on('data', this.#onData)
      this.#source.once('end', this.#onEnd)
      this.#source.once('error', this.#onError)
      this.#source.once('close', this.#onClose)
    }
    this.#arm()
    this.#source.resume()
  }

  /** Stops watching and taking the source's bytes (the request was answered). */
  detach(): void {
    clearTimeout(this.#timer)
    this.#source.off('data', this.#onData)
    this.#source.off('end', this.#onEnd)
    this.#source.off('error', this.#onError)
    this.#source.off('close', this.#onClose)
  }

  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    this.detach()
    callback(error)
  }

  readonly #onData = (chunk: Buffer) => {
    this.#arm()
    if (!this.push(chunk)) {
      // Waiting on our reader (a slow disk) is not the client's fault: no timer meanwhile.
      clearTimeout(this.#timer)
      this.#source.pause()
    }
  }

  readonly #onEnd = () => {
    clearTimeout(this.#timer)
    this.push(null)
  }

  readonly #onError = (error: Error) => this.destroy(error)

  readonly #onClose = () => {
    if (!this.#source.complete) this.destroy(new AppError('CLIENT_CLOSED_REQUEST', 'the upload was cut off'))
  }

  #arm(): void {
    clearTimeout(this.#timer)
    this.#timer = setTimeout(() => {
      this.#timedOut = true
      const seconds = this.#idleTimeoutMs / 1000
      this.destroy(new AppError('REQUEST_TIMEOUT', `the request body sent nothing for ${seconds} s`))
    }, this.#idleTimeoutMs)
  }
}

import { Readable } from 'node:stream'
import type { FastifyRequest } from 'fastify'
import { AppError } from '../domain/errors.js'
import { chunkIndexOf } from '../services/uploads/chunk-index.js'
import type { ChunkUpload } from '../services/uploads/chunk-receipt.js'
import type { DirectUploadCommand } from '../services/uploads/direct-upload.js'
import { param, userOf } from './context.js'

/**
 * A chunk PUT turned into the upload service's command: the session and index from the path,
 * the X-Chunk-Hash and Content-Length headers as sent (the service checks them against the
 * declaration, once it has found the session), and the body as a stream the service may stop
 * reading at any point (tus BaseHandler.writeToStore hands its store a stream the same way).
 */
export function chunkUploadOf(request: FastifyRequest): ChunkUpload {
  return {
    user: userOf(request),
    uploadId: param(request, 'id'),
    index: chunkIndexOf(param(request, 'index')),
    hash: headerValue(request, 'x-chunk-hash'),
    contentLength: contentLength(request),
    // No parser runs for an empty body without a Content-Type: then the request is the body.
    body: new ChunkBody(request.body instanceof Readable ? request.body : request.raw),
  }
}

/** A one-request file upload (`PUT /files/content`) turned into the upload service's command. */
export function fileUploadOf(
  request: FastifyRequest,
  query: { folderId?: string; name?: unknown; baseVersion?: number },
): DirectUploadCommand {
  return {
    user: userOf(request),
    folderId: query.folderId ?? null,
    name: query.name === undefined ? undefined : strictlyDecoded(request, 'name'),
    baseVersion: query.baseVersion ?? null,
    hash: headerValue(request, 'x-content-sha256'),
    // HTTP/1.1: a request with neither Content-Length nor Transfer-Encoding has no body.
    contentLength:
      contentLength(request) ?? (headerValue(request, 'transfer-encoding') === undefined ? 0 : undefined),
    body: new ChunkBody(request.body instanceof Readable ? request.body : request.raw),
  }
}

/**
 * A query value decoded strictly: the query parser keeps a value it cannot decode as the raw text
 * (`%C3`, `%ED%A0%80`), which as a file name would silently name the file after its encoding.
 * The schema has refused a repeated key already.
 */
function strictlyDecoded(request: FastifyRequest, key: string): string | undefined {
  const query = request.url.slice(request.url.indexOf('?') + 1)
  for (const pair of query.split('&')) {
    const separator = pair.indexOf('=')
    if ((separator === -1 ? pair : pair.slice(0, separator)) !== key) continue
    const raw = separator === -1 ? '' : pair.slice(separator + 1)
    try {
      return decodeURIComponent(raw.replaceAll('+', ' '))
    } catch {
      throw new AppError('INVALID_NAME', `${key} is not percent-encoded UTF-8`)
    }
  }
  return undefined
}

function headerValue(request: FastifyRequest, name: string): string | undefined {
  const value = request.headers[name]
  return Array.isArray(value) ? value[0] : value
}

function contentLength(request: FastifyRequest): number | undefined {
  const raw = headerValue(request, 'content-length')
  return raw === undefined || !/^\d+$/.test(raw) ? undefined : Number(raw)
}

/**
 * The request body's bytes, for a reader that may give up on them:
 *
 * - Nothing is read from the request until the reader first reads (so no `100 Continue` goes
 *   out for a PUT refused before its bytes are wanted: request-bodies.ts).
 * - A request cut off before its end fails the stream with CLIENT_CLOSED_REQUEST (499), and an
 *   error of the request (an idle timeout, 408) fails it with that error.
 * - Destroyed by its reader (the bytes were refused), it stops taking the request's bytes, but
 *   lets the rest of them be read and dropped rather than destroying the request: that would
 *   reset the connection before the client heard why (request-bodies.ts settles the rest).
 */
export class ChunkBody extends Readable {
  readonly #source: Readable
  #reading = false

  constructor(source: Readable) {
    super()
    this.#source = source
    source.once('end', this.#onEnd)
    source.once('error', this.#onError)
    source.once('close', this.#onClose)
  }

  override _read(): void {
    if (!this.#reading) {
      this.#reading = true
      this.#source.on('data', this.#onData)
    }
    this.#source.resume()
  }

  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    // The error listener stays: a request failing later (its rest timing out) must not crash.
    this.#source.off('data', this.#onData)
    this.#source.off('end', this.#onEnd)
    this.#source.off('close', this.#onClose)
    if (this.#reading && !this.#source.readableEnded) this.#source.resume()
    callback(error)
  }

  readonly #onData = (chunk: Buffer) => {
    if (!this.push(chunk)) this.#source.pause()
  }

  readonly #onEnd = () => this.push(null)

  readonly #onError = (error: Error) => this.destroy(error)

  readonly #onClose = () => {
    if (!this.#source.readableEnded)
      this.destroy(new AppError('CLIENT_CLOSED_REQUEST', 'the upload was cut off'))
  }
}

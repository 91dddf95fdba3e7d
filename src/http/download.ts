import { Readable } from 'node:stream'
import type { FastifyReply, FastifyRequest } from 'fastify'
import { AppError } from '../domain/errors.js'
import type { DownloadPlan } from '../services/chunk-reader.js'
import { parseRange } from './range.js'

/**
 * Streams a file version from its chunks, one chunk (or slice) at a time: memory stays flat
 * whatever the size. Honours Range (206, suffix ranges, 416), If-None-Match and If-Range.
 * User content is never served as something a browser would render on our origin.
 */
export async function sendDownload(request: FastifyRequest, reply: FastifyReply, plan: DownloadPlan) {
  const { version, file } = plan
  const etag = `"${version.contentHash}"`
  // On every answer, errors included: no response about user content may render as a page.
  reply
    .header('X-Content-Type-Options', 'nosniff')
    .header('Content-Security-Policy', "default-src 'none'; sandbox")
  const describeContent = () =>
    reply
      .header('ETag', etag)
      .header('Accept-Ranges', 'bytes')
      .header('Cache-Control', 'private, no-cache')
      .header('Content-Type', 'application/octet-stream')
      .header('Content-Disposition', attachment(file.name))

  if (matchesEtag(request.headers['if-none-match'], etag)) return describeContent().code(304).send()

  const ifRange = request.headers['if-range']
  const rangeHeader = ifRange === undefined || ifRange === etag ? request.headers.range : undefined
  const range = parseRange(rangeHeader, version.size)
  if (range.kind === 'unsatisfiable') {
    reply.header('Content-Range', `bytes */${version.size}`)
    throw new AppError('RANGE_NOT_SATISFIABLE', `the file has ${version.size} bytes`)
  }
  const start = range.kind === 'partial' ? range.start : 0
  const end = range.kind === 'partial' ? range.end : version.size - 1
  // Before any header about the content: a version gone, or a range known to be damaged, is an
  // error answer of its own (HEAD too, which reads nothing but must not promise more than GET).
  const bytes = version.size === 0 ? null : await plan.open(start, end)
  describeContent().header('Content-Length', String(end - start + 1))
  if (range.kind === 'partial')
    reply.code(206).header('Content-Range', `bytes ${start}-${end}/${version.size}`)
  // For HEAD, Fastify discards the body but keeps the Content-Length set here only when the body
  // is a stream (with none it writes 0): an empty one. `bytes` is never read, so nothing is.
  if (request.method === 'HEAD' || bytes === null) return reply.send(Readable.from([]))
  return reply.send(Readable.from(bytes, { objectMode: false }))
}

function matchesEtag(header: string | undefined, etag: string): boolean {
  if (!header) return false
  return header
    .split(',')
    .map((tag) => tag.trim().replace(/^W\//, ''))
    .some((tag) => tag === etag || tag === '*')
}

/** `attachment` with an ASCII fallback and the exact UTF-8 name (RFC 6266, RFC 8187). */
function attachment(name: string): string {
  const fallback = name.replace(/[^\x20-\x7e]|["\\%]/g, '_')
  return `attachment; filename="${fallback}"; filename*=UTF-8''${encodeURIComponent(name)}`
}

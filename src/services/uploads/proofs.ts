import { createHash, timingSafeEqual } from 'node:crypto'
import { AppError, invalid } from '../../domain/errors.js'
import { assertChunkIndex, chunkIndexOf } from './chunk-index.js'

/**
 * Proofs one `prove` takes: each may make the server read a stored chunk (up to 16 MiB) for 64
 * bytes of request, so a request's work is bounded; a client with more to prove sends several.
 */
export const MAX_PROOFS_PER_REQUEST = 1_024

/** What a `prove` body carries: `"<index>": "<hex HMAC-SHA256>"`, as sent. */
export type ProofClaims = Readonly<Record<string, unknown>>

/**
 * The proofs of a `prove` body as [index, proof] pairs. Each index once, written plainly ("7",
 * never "07"), so there are never more entries than the session has chunks; and at most
 * MAX_PROOFS_PER_REQUEST of them.
 */
export function parseProofs(proofs: ProofClaims, totalChunks: number): [number, string][] {
  const entries = Object.entries(proofs)
  if (entries.length > MAX_PROOFS_PER_REQUEST) {
    throw new AppError(
      'PAYLOAD_TOO_LARGE',
      `at most ${MAX_PROOFS_PER_REQUEST} proofs per request (${entries.length} were sent): send the rest in another`,
    )
  }
  return entries.map(([rawIndex, proof]) => {
    const index = assertChunkIndex(chunkIndexOf(rawIndex), totalChunks)
    if (String(index) !== rawIndex) throw invalid(`proofs["${rawIndex}"]: write the index as ${index}`)
    if (typeof proof !== 'string' || !/^[0-9a-f]{64}$/.test(proof)) {
      throw invalid(`proofs["${rawIndex}"] must be a lowercase hex HMAC-SHA256`)
    }
    return [index, proof]
  })
}

/** What a proof is compared by: its SHA-256, which is also what a session remembers. */
export const proofDigest = (hmac: Buffer): string => createHash('sha256').update(hmac).digest('hex')

/** Whether a proof (hex HMAC) is the one whose digest is `expected`, in constant time. */
export function proofMatches(proof: string, expected: string): boolean {
  return timingSafeEqual(
    Buffer.from(proofDigest(Buffer.from(proof, 'hex')), 'hex'),
    Buffer.from(expected, 'hex'),
  )
}

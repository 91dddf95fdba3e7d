import { AppError, invalid } from '../../domain/errors.js'
import type { ChunkHash } from '../../domain/hashes.js'
import type { UploadChunkRecord, User } from '../../domain/model.js'
import type { BlobStore } from '../../ports/blob-store.js'
import type { MetadataStore } from '../../ports/metadata-store.js'
import type { Sha256Pool } from '../../support/sha256-pool.js'
import type { ChunkIntegrity } from '../chunk-integrity.js'
import type { OpenSessions } from './open-sessions.js'
import { type ProofClaims, parseProofs, proofDigest, proofMatches } from './proofs.js'
import { sessionView, type UploadSessionView } from './session-view.js'

/** The proofs sent for one stored chunk, each with the first index that named it. */
interface Claim {
  chunk: UploadChunkRecord
  proofs: Map<string, number>
}

/**
 * Proof of possession: HMAC-SHA256 of the stored bytes keyed by the session's nonce. A chunk's
 * stored bytes are read and hashed at most once per session, however many indexes name it and
 * however often a proof is sent again: what its proof must hash to is remembered with the
 * session, right or wrong as the proof sent was. The hashing runs on the worker pool.
 */
export class ProofOfPossession {
  constructor(
    private readonly meta: MetadataStore,
    private readonly blobs: BlobStore,
    private readonly integrity: ChunkIntegrity,
    /** Proofs hash stored chunks here, off the event loop. */
    private readonly hashers: Sha256Pool,
    private readonly sessions: OpenSessions,
  ) {}

  async prove(user: User, uploadId: string, sent: ProofClaims): Promise<UploadSessionView> {
    const upload = await this.sessions.usable(user, uploadId)
    const proofs = parseProofs(sent, upload.totalChunks)
    const chunks = await this.sessions.refresh(user, upload)
    const claims = claimsByChunk(proofs, chunks)
    const remembered = await this.meta.uploads.proofDigests(upload.id, [...claims.keys()])
    const key = Buffer.from(upload.proofNonce, 'hex')
    for (const [hash, { chunk, proofs }] of claims) {
      let expected = remembered.get(hash)
      if (expected === undefined) {
        expected = proofDigest(await this.#hmacOfStored(chunk, key))
        await this.meta.uploads.rememberProof(upload.id, hash, expected)
      }
      for (const [proof, index] of proofs) {
        if (!proofMatches(proof, expected)) {
          throw new AppError('PROOF_INVALID', `the proof for chunk ${index} does not match its bytes`)
        }
      }
    }
    const provenHashes = [...claims.keys()]
    await this.meta.uploads.setStateByHash(upload.id, provenHashes, 'ok')
    const proven = new Set(provenHashes)
    for (const chunk of chunks) if (proven.has(chunk.hash)) chunk.state = 'ok'
    return sessionView(upload, chunks)
  }

  /**
   * The HMAC of the chunk's stored bytes. They are hashed on the way too: a proof checked
   * against damaged bytes would fail a client that holds the right ones, so damage found here
   * is marked, and the client told to upload the chunk (which repairs it).
   */
  async #hmacOfStored(chunk: UploadChunkRecord, key: Buffer): Promise<Buffer> {
    const uploadInstead = invalid(`chunk ${chunk.index} is not stored soundly: upload it instead`)
    const stored = await this.meta.chunks.find(chunk.hash)
    const bytes = stored?.state === 'live' && !stored.damaged ? await this.blobs.get(stored) : null
    if (!stored || !bytes) {
      if (stored?.state === 'live' && !stored.damaged)
        await this.integrity.damaged(stored, 'upload', 'missing')
      throw uploadInstead
    }
    const hashing = this.hashers.stream({ hmacKey: key })
    for await (const piece of bytes) hashing.update(piece as Buffer)
    const { hex: actual, hmac } = await hashing.digest()
    if (actual !== chunk.hash) {
      await this.integrity.damaged(stored, 'upload', `reads as ${actual}`)
      throw uploadInstead
    }
    return Buffer.from(hmac as string, 'hex')
  }
}

/**
 * The proofs by chunk, so that one look at the stored bytes answers every index that names
 * them. A chunk already shown to be the caller's needs no proof; one not stored yet cannot
 * have one.
 */
function claimsByChunk(
  proofs: readonly [number, string][],
  chunks: readonly UploadChunkRecord[],
): Map<ChunkHash, Claim> {
  const claims = new Map<ChunkHash, Claim>()
  for (const [index, proof] of proofs) {
    const chunk = chunks[index] as UploadChunkRecord
    if (chunk.state === 'ok') continue
    if (chunk.state === 'needed') throw invalid(`chunk ${index} is not stored yet: upload it instead`)
    const claim = claims.get(chunk.hash) ?? { chunk, proofs: new Map() }
    if (!claim.proofs.has(proof)) claim.proofs.set(proof, index)
    claims.set(chunk.hash, claim)
  }
  return claims
}

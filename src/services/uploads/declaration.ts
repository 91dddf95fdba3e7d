import { randomBytes } from 'node:crypto'
import { type ChunkPlan, planChunks } from '../../domain/chunk-plan.js'
import { invalid } from '../../domain/errors.js'
import { newId } from '../../domain/ids.js'
import type { Millis, NodeRecord, UploadRecord } from '../../domain/model.js'
import { normalizeName } from '../../domain/names.js'

/** Contract: proofNonce is 16 random bytes or more. */
const PROOF_NONCE_BYTES = 32

/**
 * What a client declares at upload init (API.md: `POST /upload/init`). The edge has checked the
 * types it can without the domain; the domain checks the rest, in the order it always has.
 */
export interface UploadDeclaration {
  /** A name as sent: the domain judges names (INVALID_NAME, also for one that is no string). */
  filename?: unknown
  size: number
  /** The caller's root when absent or null. */
  folderId?: string | null
  /** As sent: `planChunks` checks each (a lowercase hex SHA-256), naming the index of a bad one. */
  chunkHashes: readonly unknown[]
  /** Variable chunk sizes, as sent (checked by `planChunks`); fixed-size chunks when absent. */
  chunkSizes?: readonly unknown[] | null
  /** The version the client's copy was based on: a newer one on complete keeps both. */
  baseVersion?: number | null
}

/** A declaration found consistent: the file's name, its chunk layout and its base version. */
export interface CheckedDeclaration {
  filename: string
  plan: ChunkPlan
  baseVersion: number | null
}

/**
 * Checks a declaration against the domain's rules, in the order clients have always been told
 * of a fault: the name, the chunk layout, the base version. Pure; nothing is looked up.
 */
export function checkDeclaration(declaration: UploadDeclaration, minChunkBytes: number): CheckedDeclaration {
  const filename = normalizeName(declaration.filename)
  const plan = planChunks(declaration, { minChunkSize: minChunkBytes })
  return { filename, plan, baseVersion: baseVersionOf(declaration.baseVersion) }
}

/** A base version as sent: absent or a positive integer. */
export function baseVersionOf(raw: number | null | undefined): number | null {
  if (raw === undefined || raw === null) return null
  if (!Number.isSafeInteger(raw) || raw < 1) throw invalid('baseVersion must be a positive integer')
  return raw
}

/** The session record of a checked declaration, to be written into `folder` (owned by `ownerId`). */
export function newSessionRecord(
  declared: CheckedDeclaration,
  at: { userId: string; folderId: string; ownerId: string; now: Millis; ttlMs: number },
): UploadRecord {
  const { plan } = declared
  return {
    id: newId(),
    userId: at.userId,
    folderId: at.folderId,
    filename: declared.filename,
    size: plan.size,
    chunkSize: plan.chunkSize,
    totalChunks: plan.chunks.length,
    baseVersion: declared.baseVersion,
    proofNonce: randomBytes(PROOF_NONCE_BYTES).toString('hex'),
    createdAt: at.now,
    expiresAt: at.now + at.ttlMs,
    // The credit is settled by `reserveQuota`, under the owner's lock.
    reservation: { ownerId: at.ownerId, bytes: plan.size, creditFileId: null },
  }
}

/**
 * The file a session would replace were it completed now, as the commit decides it: the live
 * file of its name, unless its base version is out of date (then it would be kept as a
 * conflicted copy, and replaces nothing).
 */
export function replacedFile(existing: NodeRecord | null, baseVersion: number | null): NodeRecord | null {
  const replaces =
    existing?.kind === 'file' && (baseVersion === null || existing.currentVersion === baseVersion)
  return replaces ? existing : null
}

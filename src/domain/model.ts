import type { ChunkHash } from './hashes.js'

/** Timestamps are milliseconds since the epoch everywhere below the HTTP layer. */
export type Millis = number

export interface User {
  id: string
  /** Normalised (trimmed, lower-case): the unique key. */
  email: string
  passwordHash: string
  quotaBytes: number
  /** Sum of the sizes of the current versions of the user's files that are not purged. */
  usedBytes: number
  /** Every user has one root folder row; the API shows it as `folderId: null`. */
  rootFolderId: string
  createdAt: Millis
}

export interface AuthSession {
  /** SHA-256 of the bearer token: a leaked database does not leak usable tokens. */
  tokenHash: string
  userId: string
  createdAt: Millis
  expiresAt: Millis
}

export type NodeKind = 'file' | 'folder'

/** A file or a folder: one table, so that sibling names are unique across both. */
export interface NodeRecord {
  id: string
  ownerId: string
  /** Null only for a user's root folder. */
  parentId: string | null
  kind: NodeKind
  name: string
  /** Size of the current version (0 for folders). */
  size: number
  /** Current version number; null for folders. */
  currentVersion: number | null
  /** Content hash of the current version; null for folders. */
  contentHash: string | null
  createdAt: Millis
  updatedAt: Millis
  /** Set when the node is in the trash (itself or through a trashed ancestor). */
  deletedAt: Millis | null
  /** The node whose deletion put this one in the trash (itself for the top of a deleted tree). */
  trashRootId: string | null
  /**
   * Of a folder: changes whenever its live children change (set by the store, 0 when new).
   * A cached listing is current exactly while this is the value it was cached under.
   */
  listingVersion?: number
}

export interface VersionRecord {
  id: string
  nodeId: string
  version: number
  size: number
  contentHash: string
  authorId: string
  createdAt: Millis
}

/**
 * A stored chunk's row: `live` while its bytes may be referenced; `deleting` once the garbage
 * collector has claimed it (its bytes are going, and it can never be referenced again).
 */
export type ChunkState = 'live' | 'deleting'

export interface ChunkRecord {
  hash: ChunkHash
  size: number
  /** The number of version entries that point at this chunk. */
  refCount: number
  state: ChunkState
  /** Which stored copy holds the bytes (domain/blob-key.ts). */
  generation: string
  /**
   * The copy was found wrong or missing (by a download or scrub). It stays referenced, but is
   * not offered for deduplication: the next upload of the chunk stores a good copy.
   */
  damaged: boolean
}

export interface ChunkRef {
  index: number
  hash: ChunkHash
  size: number
  offset: number
}

export interface UploadRecord {
  id: string
  userId: string
  /** The folder node the file goes into (a user's root id for the root). */
  folderId: string
  filename: string
  size: number
  chunkSize: number
  totalChunks: number
  baseVersion: number | null
  /** Hex; the HMAC key for proofs of possession. */
  proofNonce: string
  createdAt: Millis
  expiresAt: Millis
  /** What the session holds of a quota while it is open (absent: nothing). */
  reservation?: QuotaReservation
}

/**
 * What an open upload session holds of `ownerId`'s quota: the `bytes` it may bring in (its
 * declared size), less the current size of `creditFileId`, the file it replaces, while that file
 * exists. A file covers at most one open session (services/uploads/quota-reservation.ts).
 */
export interface QuotaReservation {
  ownerId: string
  bytes: number
  creditFileId: string | null
}

/**
 * Where one chunk of an upload stands:
 * - `needed`: the server does not hold the bytes yet;
 * - `prove`: the server holds them, but the caller has not shown it has them too;
 * - `ok`: uploaded or proven in this session, or already in a file the caller can read.
 */
export type UploadChunkState = 'needed' | 'prove' | 'ok'

export interface UploadChunkRecord extends ChunkRef {
  state: UploadChunkState
}

/** What a member may do in a folder shared with them: viewers read, editors also write. */
export type MemberRole = 'viewer' | 'editor'

/** A user's role in a folder that another user owns (and everything below it). */
export interface FolderMember {
  folderId: string
  userId: string
  role: MemberRole
  /** Who added them: the folder's owner. */
  addedBy: string
  createdAt: Millis
}

/** A public link to a file or folder (API.md, Sharing). */
export interface ShareLink {
  id: string
  /** The secret in the link's URL: 256 random bits, base64url. */
  token: string
  ownerId: string
  nodeId: string
  /** argon2id of the link's password; null when it has none. */
  passwordHash: string | null
  expiresAt: Millis | null
  createdAt: Millis
  revokedAt: Millis | null
  downloads: number
}

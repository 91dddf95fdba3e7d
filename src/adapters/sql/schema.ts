import type { ColumnType } from 'kysely'
import type { ChangeAction } from '../../domain/journal.js'
import type { ChunkState, MemberRole, NodeKind, UploadChunkState } from '../../domain/model.js'

/**
 * Table types for Kysely. Columns are snake_case; every timestamp is a BIGINT of epoch
 * milliseconds, and every BIGINT reaches JS as a number (better-sqlite3 does that by default;
 * the PostgreSQL pool is given a parser for oid 20). Sizes stay below 2^53 (MAX_FILE_SIZE).
 */
export interface Database {
  users: UsersTable
  auth_sessions: AuthSessionsTable
  nodes: NodesTable
  versions: VersionsTable
  version_chunks: VersionChunksTable
  chunks: ChunksTable
  uploads: UploadsTable
  upload_chunks: UploadChunksTable
  journal_heads: JournalHeadsTable
  changes: ChangesTable
  folder_members: FolderMembersTable
  share_links: ShareLinksTable
  share_link_attempts: ShareLinkAttemptsTable
  settings: SettingsTable
  leases: LeasesTable
}

/** A column with a database default: optional on insert. */
type Defaulted<T> = ColumnType<T, T | undefined, T>

export interface UsersTable {
  id: string
  email: string
  password_hash: string
  quota_bytes: number
  used_bytes: Defaulted<number>
  /** No foreign key: the user row is inserted before its root folder, which is owned by it. */
  root_folder_id: string
  created_at: number
}

export interface AuthSessionsTable {
  token_hash: string
  user_id: string
  created_at: number
  expires_at: number
}

export interface NodesTable {
  id: string
  owner_id: string
  parent_id: string | null
  kind: NodeKind
  name: string
  /** `nameKey(name)`: live siblings are unique under it (migration 0005). */
  name_key: string | null
  size: Defaulted<number>
  current_version: number | null
  content_hash: string | null
  created_at: number
  updated_at: number
  deleted_at: number | null
  trash_root_id: string | null
  /** Bumped with every change to the live children (see migration 0002). */
  listing_version: Defaulted<number>
  /** When retention may next drop one of the file's versions; null: never (migration 0009). */
  history_due_at: number | null
}

export interface VersionsTable {
  id: string
  node_id: string
  version: number
  size: number
  content_hash: string
  author_id: string
  created_at: number
}

export interface VersionChunksTable {
  version_id: string
  idx: number
  chunk_hash: string
  size: number
  /** `offset` is a reserved word in SQL. */
  byte_offset: number
}

export interface ChunksTable {
  hash: string
  size: number
  ref_count: Defaulted<number>
  created_at: number
  /** See migration 0003: live, or claimed by the collector. */
  state: Defaulted<ChunkState>
  marked_at: number | null
  verified_at: Defaulted<number>
  /** Which stored copy holds the bytes (migration 0007); '' before generations. */
  generation: Defaulted<string>
  /** When the copy was found wrong or gone (migration 0007); null while sound. */
  damaged_at: number | null
  /** 1 while no version has named the chunk since its copy was stored (migration 0013). */
  never_referenced: Defaulted<number>
}

export interface UploadsTable {
  id: string
  user_id: string
  folder_id: string
  filename: string
  size: number
  chunk_size: number
  total_chunks: number
  base_version: number | null
  proof_nonce: string
  created_at: number
  expires_at: number
  /** Set by `complete` (migration 0008); the session then answers only a retried complete. */
  completed_at: number | null
  file_id: string | null
  file_version: number | null
  content_hash: string | null
  /** 1 when the completion made a conflicted copy. */
  conflict: Defaulted<number>
  /** The account charged, and the bytes of its quota held while the session is open (0011). */
  owner_id: string | null
  reserved_bytes: Defaulted<number>
  /** The file whose current size covers part of `reserved_bytes` (migration 0013). */
  credit_file_id: string | null
}

export interface UploadChunksTable {
  upload_id: string
  idx: number
  chunk_hash: string
  size: number
  byte_offset: number
  state: UploadChunkState
  /** SHA-256 of the HMAC a proof of this chunk must equal, once computed (migration 0011). */
  proof_digest: string | null
}

/** See migration 0004: per user, the last position handed out and the last compacted away. */
export interface JournalHeadsTable {
  user_id: string
  head: Defaulted<number>
  floor: Defaulted<number>
}

export interface ChangesTable {
  user_id: string
  seq: number
  action: ChangeAction
  kind: NodeKind
  node_id: string
  name: string
  parent_id: string | null
  version: number | null
  size: number
  content_hash: string | null
  actor_id: string
  at: number
}

/** See migration 0006. */
export interface FolderMembersTable {
  folder_id: string
  user_id: string
  role: MemberRole
  added_by: string
  created_at: number
}

export interface ShareLinksTable {
  id: string
  token: string
  token_hash: string
  owner_id: string
  node_id: string
  password_hash: string | null
  expires_at: number | null
  created_at: number
  revoked_at: number | null
  downloads: Defaulted<number>
  /** Password attempts reserved in the window that started at `attempts_since` (migration 0010). */
  failed_attempts: Defaulted<number>
  attempts_since: Defaulted<number>
}

/** See migration 0010: one address's password attempts on a link in the link's window. */
export interface ShareLinkAttemptsTable {
  link_id: string
  address: string
  window_start: number
  attempts: number
}

/** See migration 0009: small facts about the data (the retention policy due times follow). */
export interface SettingsTable {
  name: string
  value: string
}

/** See migration 0009: who runs a named job (upkeep), until when. */
export interface LeasesTable {
  name: string
  holder: string
  expires_at: number
}

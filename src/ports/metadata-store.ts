import type { AuditRepository } from './metadata/audit-repository.js'
import type { ChunkRepository } from './metadata/chunk-repository.js'
import type { CollectorRepository } from './metadata/collector-repository.js'
import type { JournalRepository } from './metadata/journal-repository.js'
import type { LeaseRepository } from './metadata/lease-repository.js'
import type { NodeRepository } from './metadata/node-repository.js'
import type { SessionRepository } from './metadata/session-repository.js'
import type { SettingRepository } from './metadata/setting-repository.js'
import type { SharingRepository } from './metadata/sharing-repository.js'
import type { UploadRepository } from './metadata/upload-repository.js'
import type { UserRepository } from './metadata/user-repository.js'
import type { VersionRepository } from './metadata/version-repository.js'

/**
 * Where users, folders, files, versions, chunks and upload sessions are recorded.
 * Implemented once with Kysely for SQLite and PostgreSQL (adapters/sql).
 *
 * Every method of the repositories runs on its own (auto-commit) when called on the store,
 * or inside the surrounding transaction when called on the `tx` handed to `transaction`.
 * Uniqueness is enforced by the database, never by a read-then-write in the caller, so two
 * API nodes racing each other still cannot create two siblings of the same name.
 */
export interface MetadataStore extends Repositories {
  /**
   * Runs `work` in one transaction: commits when it resolves, rolls back when it throws
   * (and rethrows). Nothing written inside is visible to others before the commit. A
   * transaction the database aborts as a deadlock or serialization failure is run again
   * (a few times), so `work` must not act outside the transaction.
   */
  transaction<T>(work: (tx: Repositories) => Promise<T>): Promise<T>
  /** Resolves when the database answers a trivial query; for /readyz. */
  ping(): Promise<void>
  close(): Promise<void>
}

export interface Repositories {
  users: UserRepository
  sessions: SessionRepository
  nodes: NodeRepository
  versions: VersionRepository
  chunks: ChunkRepository
  uploads: UploadRepository
  collector: CollectorRepository
  audit: AuditRepository
  journal: JournalRepository
  sharing: SharingRepository
  settings: SettingRepository
  leases: LeaseRepository
}

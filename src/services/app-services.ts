import type { BlobStore } from '../ports/blob-store.js'
import type { EventBus } from '../ports/event-bus.js'
import type { MetadataStore } from '../ports/metadata-store.js'
import type { Sha256Pool } from '../support/sha256-pool.js'
import type { AuthService } from './auth-service.js'
import type { FileService } from './file-service.js'
import type { FolderService } from './folder-service.js'
import type { GarbageCollector } from './garbage-collector.js'
import type { MemberService } from './member-service.js'
import type { Scrubber } from './scrubber.js'
import type { ShareLinkService } from './share-link-service.js'
import type { SyncHub } from './sync-hub.js'
import type { SyncService } from './sync-service.js'
import type { TrashService } from './trash-service.js'
import type { UploadService } from './uploads/upload-service.js'
import type { VersionHistory } from './version-history.js'
import type { VersionService } from './version-service.js'

/**
 * The use cases and the stores they share: what the HTTP layer, the CLI and the background jobs
 * are handed. Built in one place only, src/composition.ts, from the configuration.
 */
export interface AppServices {
  auth: AuthService
  folders: FolderService
  files: FileService
  uploads: UploadService
  versions: VersionService
  trash: TrashService
  members: MemberService
  links: ShareLinkService
  sync: SyncService
  hub: SyncHub
  bus: EventBus
  history: VersionHistory
  gc: GarbageCollector
  scrubber: Scrubber
  blobs: BlobStore
  meta: MetadataStore
  /** SHA-256 worker threads shared by downloads and scrub; closed with the server. */
  hashers: Sha256Pool
}

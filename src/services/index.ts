import type { Clock } from '../domain/clock.js'
import { DEFAULT_RETENTION, type RetentionPolicy } from '../domain/retention.js'
import type { AppServices } from '../http/context.js'
import type { BlobStore } from '../ports/blob-store.js'
import type { MetadataStore } from '../ports/metadata-store.js'
import { type AuthOptions, AuthService } from './auth-service.js'
import { FileService } from './file-service.js'
import { FolderService } from './folder-service.js'
import { GarbageCollector } from './garbage-collector.js'
import { PasswordHasher, type PasswordHashing } from './password-hasher.js'
import { Scrubber } from './scrubber.js'
import { TrashService } from './trash-service.js'
import { UploadService } from './upload-service.js'
import { VersionHistory } from './version-history.js'
import { VersionService } from './version-service.js'

export interface ServiceOptions extends AuthOptions {
  uploadSessionTtlMs: number
  passwordHashing?: PasswordHashing
  retention?: RetentionPolicy
  trashRetentionMs?: number
  gcGraceMs?: number
}

const HOUR = 3_600_000

/** Wires the use cases to the stores; main.ts, the CLI and the tests all build them here. */
export function buildServices(
  meta: MetadataStore,
  blobs: BlobStore,
  clock: Clock,
  options: ServiceOptions,
): AppServices {
  const history = new VersionHistory(meta, options.retention ?? DEFAULT_RETENTION)
  return {
    auth: new AuthService(meta, new PasswordHasher(options.passwordHashing), clock, options),
    folders: new FolderService(meta, clock),
    files: new FileService(meta, clock),
    uploads: new UploadService(meta, blobs, clock, history, { sessionTtlMs: options.uploadSessionTtlMs }),
    versions: new VersionService(meta, clock, history),
    trash: new TrashService(meta, clock, { retentionMs: options.trashRetentionMs ?? 30 * 24 * HOUR }),
    history,
    gc: new GarbageCollector(meta, blobs, clock, { graceMs: options.gcGraceMs ?? HOUR }),
    scrubber: new Scrubber(meta, blobs, clock),
    blobs,
    meta,
  }
}

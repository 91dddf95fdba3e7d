import { randomUUID } from 'node:crypto'
import { LocalEventBus } from '../adapters/local-bus/local-event-bus.js'
import { DEFAULT_MIN_CHUNK_SIZE } from '../domain/chunk-plan.js'
import type { Clock } from '../domain/clock.js'
import { DEFAULT_RETENTION, type RetentionPolicy } from '../domain/retention.js'
import type { BlobStore } from '../ports/blob-store.js'
import type { EventBus } from '../ports/event-bus.js'
import type { MetadataStore } from '../ports/metadata-store.js'
import { Sha256Pool } from '../support/sha256-pool.js'
import type { AppServices } from './app-services.js'
import { type AuthOptions, AuthService } from './auth-service.js'
import { ChangeJournal } from './change-journal.js'
import { ChunkIntegrity, type DamageEvent } from './chunk-integrity.js'
import { ChunkReader } from './chunk-reader.js'
import { FileService } from './file-service.js'
import { FolderService } from './folder-service.js'
import { GarbageCollector } from './garbage-collector.js'
import { MemberService } from './member-service.js'
import { PasswordHasher, type PasswordHashing } from './password-hasher.js'
import { Scrubber } from './scrubber.js'
import { type ShareLinkOptions, ShareLinkService } from './share-link-service.js'
import { SyncHub } from './sync-hub.js'
import { type SyncOptions, SyncService } from './sync-service.js'
import { TrashService } from './trash-service.js'
import { UploadService } from './uploads/upload-service.js'
import { VersionHistory } from './version-history.js'
import { VersionService } from './version-service.js'

export interface ServiceOptions extends AuthOptions {
  uploadSessionTtlMs: number
  /** Upload sessions one user may have open at once. */
  uploadMaxOpenSessions?: number
  /** Every declared chunk but a file's last is at least this large (UPLOAD_MIN_CHUNK_BYTES). */
  uploadMinChunkBytes?: number
  passwordHashing?: PasswordHashing
  retention?: RetentionPolicy
  trashRetentionMs?: number
  gcGraceMs?: number
  /** How changes reach the other API nodes; alone in this process when absent. */
  bus?: EventBus
  journal?: Partial<SyncOptions>
  shareLinks?: Partial<ShareLinkOptions>
  /** Told of failures in the background (event bus, sync watchers); they never fail a request. */
  onBackgroundError?: (error: unknown, context: string) => void
  /** Told of every stored copy found wrong or gone (a download, scrub or upload came across it). */
  onChunkDamage?: (event: DamageEvent) => void
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
  const bus = options.bus ?? new LocalEventBus({ nodeId: randomUUID() })
  const hub = new SyncHub(bus, options.onBackgroundError)
  const journal = new ChangeJournal(meta, clock, (entries) => hub.committed(entries))
  const passwords = new PasswordHasher(options.passwordHashing)
  const integrity = new ChunkIntegrity(meta, clock, options.onChunkDamage)
  // Worker threads start on first use (a download, a scrub); `hashers.close()` ends them.
  const hashers = new Sha256Pool()
  const reader = new ChunkReader(meta, blobs, integrity, hashers)
  return {
    auth: new AuthService(meta, passwords, clock, options),
    members: new MemberService(meta, journal, clock),
    links: new ShareLinkService(meta, passwords, clock, reader, {
      attemptLimit: options.shareLinks?.attemptLimit ?? 10,
      attemptsPerAddress: options.shareLinks?.attemptsPerAddress ?? 5,
      attemptWindowMs: options.shareLinks?.attemptWindowMs ?? 15 * 60_000,
    }),
    folders: new FolderService(meta, journal, clock),
    files: new FileService(meta, journal, clock, reader),
    uploads: new UploadService(
      { meta, journal, blobs, clock, history, integrity, hashers },
      {
        sessionTtlMs: options.uploadSessionTtlMs,
        maxOpenSessions: options.uploadMaxOpenSessions ?? 100,
        minChunkBytes: options.uploadMinChunkBytes ?? DEFAULT_MIN_CHUNK_SIZE,
      },
    ),
    versions: new VersionService(meta, journal, clock, history),
    trash: new TrashService(meta, journal, clock, {
      retentionMs: options.trashRetentionMs ?? 30 * 24 * HOUR,
    }),
    sync: new SyncService(meta, hub, clock, {
      journalRetentionMs: options.journal?.journalRetentionMs ?? 30 * 24 * HOUR,
      journalMaxEntries: options.journal?.journalMaxEntries ?? 100_000,
    }),
    hub,
    bus,
    history,
    gc: new GarbageCollector(meta, blobs, clock, { graceMs: options.gcGraceMs ?? HOUR }),
    scrubber: new Scrubber(meta, blobs, clock, integrity, hashers),
    hashers,
    blobs,
    meta,
  }
}

import { randomUUID } from 'node:crypto'
import os from 'node:os'
import type { Config } from './config.js'
import type { Clock } from './domain/clock.js'
import type { BlobStore } from './ports/blob-store.js'
import type { EventBus } from './ports/event-bus.js'
import type { MetadataStore } from './ports/metadata-store.js'
import type { AppServices } from './services/app-services.js'
import { AuthService } from './services/auth-service.js'
import { ChangeJournal } from './services/change-journal.js'
import { ChunkIntegrity, type DamageEvent } from './services/chunk-integrity.js'
import { ChunkReader } from './services/chunk-reader.js'
import { FileService } from './services/file-service.js'
import { FolderService } from './services/folder-service.js'
import { GarbageCollector } from './services/garbage-collector.js'
import { MemberService } from './services/member-service.js'
import { PasswordHasher } from './services/password-hasher.js'
import { Scrubber } from './services/scrubber.js'
import { ShareLinkService } from './services/share-link-service.js'
import { SyncHub } from './services/sync-hub.js'
import { SyncService } from './services/sync-service.js'
import { TrashService } from './services/trash-service.js'
import { UploadService } from './services/uploads/upload-service.js'
import { VersionHistory } from './services/version-history.js'
import { VersionService } from './services/version-service.js'
import { Sha256Pool } from './support/sha256-pool.js'

/**
 * The composition root: the one module that reads the configuration, picks an adapter for each
 * port and wires the services to them. Nothing else picks an adapter, so the embedded and the
 * scaled deployments differ by environment variables alone (README, "Running it").
 *
 * The adapters are imported when chosen, not before: a server on SQLite never loads `pg` or
 * `amqplib`, one on PostgreSQL never loads the SQLite addon (a native module that may not even
 * be built where only PostgreSQL is used), and the SDKs of later adapters (S3, Redis) stay out
 * of processes that do not use them.
 */

export interface Stores {
  meta: MetadataStore
  blobs: BlobStore
}

/** Where the services report what happens outside any request. */
export interface ServiceHooks {
  /** Failures in the background (event bus, sync watchers); they never fail a request. */
  onBackgroundError?: (error: unknown, context: string) => void
  /** Every stored copy found wrong or gone (a download, scrub or upload came across it). */
  onChunkDamage?: (event: DamageEvent) => void
}

/** The parts of the configuration the services read, each service its group whole. */
export type ServiceConfig = Pick<Config, 'auth' | 'uploads' | 'versions' | 'trash' | 'gc' | 'sync' | 'shares'>

/** The metadata and chunk stores as configured, opened (and migrated) and ready. */
export async function openStores(config: Pick<Config, 'db' | 'blobs'>): Promise<Stores> {
  const meta = await openMetadataStore(config.db)
  try {
    const { DiskBlobStore } = await import('./adapters/disk/disk-blob-store.js')
    const blobs = new DiskBlobStore(config.blobs)
    await blobs.init()
    return { meta, blobs }
  } catch (error) {
    await meta.close()
    throw error
  }
}

async function openMetadataStore(db: Config['db']): Promise<MetadataStore> {
  if (db.kind === 'postgres') {
    const { openPostgresMetadataStore } = await import('./adapters/postgres/postgres-metadata-store.js')
    return openPostgresMetadataStore(db)
  }
  const { openSqliteMetadataStore } = await import('./adapters/sqlite/sqlite-metadata-store.js')
  return openSqliteMetadataStore(db)
}

/** A name for this process, unique across nodes and restarts, readable in logs and the broker's UI. */
export function processName(): string {
  return `${os.hostname()}-${process.pid}-${randomUUID().slice(0, 8)}`
}

/**
 * The event bus as configured. A RabbitMQ bus that cannot connect yet does not stop the server
 * from starting: it keeps trying, and /readyz says so meanwhile.
 */
export async function openBus(
  bus: Config['bus'],
  onError: (error: unknown, context: string) => void,
): Promise<EventBus> {
  const nodeId = processName()
  if (bus.kind === 'local') {
    const { LocalEventBus } = await import('./adapters/local-bus/local-event-bus.js')
    return new LocalEventBus({ nodeId, onError })
  }
  const { AmqpEventBus } = await import('./adapters/amqp/amqp-event-bus.js')
  const amqp = new AmqpEventBus({ url: bus.url, nodeId, onError })
  await amqp.start()
  return amqp
}

/** Wires the use cases to the stores and the bus: the server, the CLI and the tests build them here. */
export function buildServices(
  { meta, blobs, bus }: Stores & { bus: EventBus },
  clock: Clock,
  config: ServiceConfig,
  hooks: ServiceHooks = {},
): AppServices {
  const history = new VersionHistory(meta, config.versions)
  const hub = new SyncHub(bus, hooks.onBackgroundError)
  const journal = new ChangeJournal(meta, clock, (entries) => hub.committed(entries))
  const passwords = new PasswordHasher(config.auth.passwordHashing)
  const integrity = new ChunkIntegrity(meta, clock, hooks.onChunkDamage)
  // Worker threads start on first use (a download, a scrub); `hashers.close()` ends them.
  const hashers = new Sha256Pool()
  const reader = new ChunkReader(meta, blobs, integrity, hashers)
  return {
    auth: new AuthService(meta, passwords, clock, config.auth),
    members: new MemberService(meta, journal, clock),
    links: new ShareLinkService(meta, passwords, clock, reader, config.shares),
    folders: new FolderService(meta, journal, clock),
    files: new FileService(meta, journal, clock, reader),
    uploads: new UploadService({ meta, journal, blobs, clock, history, integrity, hashers }, config.uploads),
    versions: new VersionService(meta, journal, clock, history),
    trash: new TrashService(meta, journal, clock, config.trash),
    sync: new SyncService(meta, hub, clock, config.sync),
    hub,
    bus,
    history,
    gc: new GarbageCollector(meta, blobs, clock, config.gc),
    scrubber: new Scrubber(meta, blobs, clock, integrity, hashers),
    hashers,
    blobs,
    meta,
  }
}

/**
 * Stores, bus and services as configured, for a command that runs and ends (gc, scrub; they
 * publish no changes, so the CLI hands them an in-process bus in `config.bus`).
 */
export async function openServices(
  config: Config,
  clock: Clock,
  hooks: ServiceHooks = {},
): Promise<{ services: AppServices; close(): Promise<void> }> {
  const stores = await openStores(config)
  const onError = hooks.onBackgroundError ?? (() => {})
  const bus = await openBus(config.bus, onError).catch(async (error: unknown) => {
    await stores.meta.close()
    throw error
  })
  const services = buildServices({ ...stores, bus }, clock, config, hooks)
  return {
    services,
    async close() {
      await bus.close()
      await services.hashers.close()
      await stores.meta.close()
    },
  }
}

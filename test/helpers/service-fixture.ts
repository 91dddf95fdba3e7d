import { LocalEventBus } from '../../src/adapters/local-bus/local-event-bus.js'
import { MemoryBlobStore } from '../../src/adapters/memory/memory-blob-store.js'
import type { Millis, User } from '../../src/domain/model.js'
import type { MetadataStore } from '../../src/ports/metadata-store.js'
import type { AppServices } from '../../src/services/app-services.js'
import { buildServices } from '../../src/services/index.js'
import { type DatabaseKind, openTestMetadataStore } from './databases.js'

/** Cheap, but real argon2id: registering a user in a unit test should cost milliseconds. */
const CHEAP_ARGON2 = { memoryKiB: 1024, passes: 1 }

/**
 * The services wired as the server wires them, over a fresh metadata store (SQLite in memory by
 * default, the fastest), chunks in memory and an in-process bus, with a clock the test moves: what a
 * service's unit test (`src/services/<name>.test.ts`) calls directly, without HTTP.
 */
export interface ServiceFixture {
  services: AppServices
  meta: MetadataStore
  blobs: MemoryBlobStore
  /** The time the services read; move it with `advance`. */
  now(): Millis
  advance(ms: number): void
  /** A new account (email `<name>@example.com`). */
  user(name?: string): Promise<User>
  close(): Promise<void>
}

export async function openServiceFixture(kind: DatabaseKind = 'sqlite'): Promise<ServiceFixture> {
  const db = await openTestMetadataStore(kind, { sqliteInMemory: true })
  const blobs = new MemoryBlobStore()
  let now = Date.UTC(2030, 0, 1)
  let users = 0
  const services = buildServices(db.store, blobs, () => now, {
    bus: new LocalEventBus({ nodeId: 'unit-test' }),
    sessionTtlMs: 24 * 3_600_000,
    sessionCacheMs: 0,
    defaultQuotaBytes: 1024 ** 3,
    uploadSessionTtlMs: 24 * 3_600_000,
    uploadMinChunkBytes: 1,
    passwordHashing: CHEAP_ARGON2,
  })
  return {
    services,
    meta: db.store,
    blobs,
    now: () => now,
    advance(ms) {
      now += ms
    },
    async user(name = `user${++users}`) {
      const { user } = await services.auth.register({
        email: `${name}@example.com`,
        password: 'unit test password',
      })
      return user
    },
    async close() {
      await services.hashers.close()
      await services.bus.close()
      await db.cleanup()
    },
  }
}

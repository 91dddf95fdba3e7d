import { LocalEventBus } from '../../src/adapters/local-bus/local-event-bus.js'
import { MemoryBlobStore } from '../../src/adapters/memory/memory-blob-store.js'
import { buildServices } from '../../src/composition.js'
import { type Config, loadConfig } from '../../src/config.js'
import type { Millis, User } from '../../src/domain/model.js'
import type { MetadataStore } from '../../src/ports/metadata-store.js'
import type { AppServices } from '../../src/services/app-services.js'
import { type DatabaseKind, openTestMetadataStore } from './databases.js'

/**
 * The configuration as the server would read it from these variables, with what tests need
 * unless they say otherwise: cheap (but real) argon2id, so that registering costs milliseconds,
 * and chunks of any size, so that files of a few bytes have several.
 */
export function testConfig(env: Record<string, string> = {}): Config {
  return loadConfig({ ARGON2_MEMORY_KIB: '1024', ARGON2_PASSES: '1', UPLOAD_MIN_CHUNK_BYTES: '1', ...env })
}

/**
 * The services wired as the server wires them, over a fresh metadata store (SQLite by default,
 * the fastest), chunks in memory and an in-process bus, with a clock the test moves: what a
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
  const db = await openTestMetadataStore(kind)
  const blobs = new MemoryBlobStore()
  let now = Date.UTC(2030, 0, 1)
  let users = 0
  const bus = new LocalEventBus({ nodeId: 'unit-test' })
  const services = buildServices(
    { meta: db.store, blobs, bus },
    () => now,
    testConfig({ SESSION_CACHE_MS: '0' }),
  )
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

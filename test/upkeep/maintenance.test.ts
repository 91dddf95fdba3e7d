import { mkdtemp, readdir, rm, utimes, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { Registry } from 'prom-client'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { DiskBlobStore } from '../../src/adapters/disk/disk-blob-store.js'
import { LocalEventBus } from '../../src/adapters/local-bus/local-event-bus.js'
import { buildServices } from '../../src/composition.js'
import type { Millis } from '../../src/domain/model.js'
import type { MetadataStore } from '../../src/ports/metadata-store.js'
import type { AppServices } from '../../src/services/app-services.js'
import {
  Maintenance,
  type MaintenanceReport,
  UPKEEP_LEASE,
  type UpkeepReport,
} from '../../src/services/maintenance.js'
import { maintenanceMetrics } from '../../src/services/maintenance-metrics.js'
import { DATABASES, openTestMetadataStore } from '../helpers/databases.js'
import { testConfig } from '../helpers/service-fixture.js'

/**
 * Periodic upkeep over a real database and a real disk blob store: one node at a time (the
 * lease), and temp files of puts that never finished are reaped.
 */

const MINUTE = 60_000
const HOUR = 60 * MINUTE

function ran(report: MaintenanceReport): UpkeepReport {
  if (!report.ran) throw new Error('the upkeep was skipped')
  return report
}

/** A promise to wait on and the function that settles it. */
function gate(): { opened: Promise<void>; open: () => void } {
  let open = () => {}
  const opened = new Promise<void>((resolve) => {
    open = resolve
  })
  return { opened, open }
}

describe.each(DATABASES)('upkeep on $name', ({ name, available }) => {
  let store: MetadataStore
  let cleanupStore: () => Promise<void>
  let dir: string
  let blobs: DiskBlobStore
  let services: AppServices
  let now: Millis

  beforeEach(async () => {
    if (!available) return
    ;({ store, cleanup: cleanupStore } = await openTestMetadataStore(name))
    dir = await mkdtemp(path.join(tmpdir(), 'tessera-upkeep-'))
    blobs = new DiskBlobStore({ root: path.join(dir, 'chunks') })
    await blobs.init()
    now = Date.now()
    const bus = new LocalEventBus({ nodeId: 'upkeep-test' })
    const config = testConfig({ SESSION_TTL_HOURS: '1', SESSION_CACHE_MS: '0', UPLOAD_TTL_HOURS: '1' })
    services = buildServices({ meta: store, blobs, bus }, () => now, config)
  })
  afterEach(async () => {
    await cleanupStore?.()
    if (dir) await rm(dir, { recursive: true, force: true })
  })

  const maintenance = (holder: string, parts: Partial<AppServices> = {}, gcGraceMs = HOUR) =>
    new Maintenance({ ...services, ...parts }, () => now, {
      holder,
      orphanScanIntervalMs: 24 * HOUR,
      gcGraceMs,
      leaseTtlMs: 10 * MINUTE,
    })

  it.skipIf(!available)(
    'runs on one node at a time: the other skips, and runs once the lease is free',
    async () => {
      // Node a stops inside its first step, holding the lease.
      const inside = gate()
      const proceed = gate()
      const slowTrash = {
        emptyExpired: async () => {
          inside.open()
          await proceed.opened
          return 0
        },
      } as unknown as AppServices['trash']
      const a = maintenance('node-a', { trash: slowTrash })
      const b = maintenance('node-b')
      const first = a.run()
      await inside.opened
      expect(await b.run()).toEqual({ ran: false })
      proceed.open()
      expect(ran(await first)).toMatchObject({ trashPurged: 0, leaseLost: false })
      // Released at the end: the next run, on either node, goes ahead.
      expect((await b.run()).ran).toBe(true)
      expect((await a.run()).ran).toBe(true)
    },
  )

  it.skipIf(!available)('of two nodes starting upkeep at the same moment, exactly one runs', async () => {
    const reports = await Promise.all([maintenance('node-a').run(), maintenance('node-b').run()])
    expect(reports.map((report) => report.ran).sort()).toEqual([false, true])
  })

  it.skipIf(!available)(
    'does not wait for a lease held by a node that died: it runs once the lease expires',
    async () => {
      expect(await store.leases.acquire(UPKEEP_LEASE, 'died', now, 10 * MINUTE)).toBe(true)
      const b = maintenance('node-b')
      expect(await b.run()).toEqual({ ran: false })
      now += 10 * MINUTE
      expect((await b.run()).ran).toBe(true)
    },
  )

  it.skipIf(!available)(
    'keeps its lease through a long history sweep by renewing it between batches',
    async () => {
      const longSweep = {
        sweep: async (_at: Millis, options: { betweenBatches?: () => Promise<void> }) => {
          for (let batch = 0; batch < 3; batch++) {
            now += 9 * MINUTE
            await options.betweenBatches?.()
            expect(await store.leases.acquire(UPKEEP_LEASE, 'node-b', now, 10 * MINUTE)).toBe(false)
          }
          return { visited: 0, pruned: 0, policyChanged: false }
        },
      } as unknown as AppServices['history']
      expect(ran(await maintenance('node-a', { history: longSweep }).run()).leaseLost).toBe(false)
    },
  )

  it.skipIf(!available)('says so when its lease ran out under a step and another node took it', async () => {
    const takenOver = {
      emptyExpired: async () => {
        now += 11 * MINUTE
        expect(await store.leases.acquire(UPKEEP_LEASE, 'node-b', now, 10 * MINUTE)).toBe(true)
        return 0
      },
    } as unknown as AppServices['trash']
    const report = ran(await maintenance('node-a', { trash: takenOver }).run())
    expect(report.leaseLost).toBe(true)
    // Node a's release at the end leaves node b's lease alone.
    expect(await store.leases.acquire(UPKEEP_LEASE, 'node-c', now, 10 * MINUTE)).toBe(false)
  })

  it.skipIf(!available)(
    'removes temp files of puts that died an hour ago or more, keeps fresh ones, and counts them',
    async () => {
      const temp = path.join(blobs.root, 'tmp')
      const write = async (file: string, ageMs: number) => {
        await writeFile(path.join(temp, file), 'half a chunk')
        const at = new Date(Date.now() - ageMs)
        await utimes(path.join(temp, file), at, at)
      }
      await write('abandoned', 2 * HOUR)
      await write('writing', MINUTE)
      await write('slow', 50 * MINUTE)

      const registry = new Registry()
      const record = maintenanceMetrics(registry)
      const report = ran(await maintenance('node-a').run())
      record(report)
      expect(report.abandonedWrites).toBe(1)
      expect((await readdir(temp)).sort()).toEqual(['slow', 'writing'])
      const metrics = await registry.metrics()
      expect(metrics).toContain('tessera_upkeep_abandoned_writes_removed_total 1')
      expect(metrics).toContain('tessera_history_files_visited_total 0')

      // A grace period longer than an hour is waited for too.
      await write('within-grace', 2 * HOUR)
      expect(ran(await maintenance('node-a', {}, 3 * HOUR).run()).abandonedWrites).toBe(0)
      expect((await readdir(temp)).sort()).toEqual(['slow', 'within-grace', 'writing'])

      record({ ran: false })
      expect(await registry.metrics()).toContain('tessera_upkeep_skipped_total 1')
    },
  )
})

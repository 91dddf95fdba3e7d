import type { ChildProcess } from 'node:child_process'
import { readFile } from 'node:fs/promises'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { GarbageCollector } from '../../src/services/garbage-collector.js'
import type { PausePoint } from '../../src/support/pause-points.js'
import { ApiClient, sha256 } from '../helpers/api-client.js'
import { DATABASES } from '../helpers/databases.js'
import { holdsReleasedAfterEach } from '../helpers/pause.js'
import { spawnTessera } from '../helpers/tessera-cli.js'
import { startTestServer, type TestServer } from '../helpers/test-server.js'
import {
  concat,
  copiesOnDisk,
  deleteAndPurge,
  GRACE_MS,
  PAST_GRACE_MS,
  randomParts,
  rowCopyPath,
  uploadParts,
} from './gc-helpers.js'

/**
 * Two collectors at once, one of them stalled between the steps of its sweep for longer than
 * the grace period (a VM suspended, a process stopped, a clock behind): the other takes its
 * claims over and finishes them, the chunk is uploaded again, and then the stalled one wakes
 * up and carries on. It must never delete the bytes of the chunk stored again.
 */

const STEPS: PausePoint[] = [
  'gc.sweep.after-claim',
  'gc.sweep.after-blob-delete',
  'gc.sweep.after-row-delete',
]

describe.each(DATABASES)('two collectors on %s', ({ name: backend, available }) => {
  let server: TestServer
  const hold = holdsReleasedAfterEach()
  const fresh = () => new ApiClient(server.api).register()

  beforeAll(async () => {
    if (!available) return
    server = await startTestServer(backend, { GC_INTERVAL_SECONDS: '0' })
  })
  afterAll(async () => server?.stop())

  /** A second collector on the same stores and clock, as another API node (or `tessera gc`) runs it. */
  const secondCollector = () =>
    new GarbageCollector(server.services.meta, server.services.blobs, () => server.now(), {
      graceMs: GRACE_MS,
    })

  for (const step of STEPS) {
    it.skipIf(!available)(
      `one stalled at ${step} past the grace never deletes the chunk stored again`,
      async () => {
        const [ann, bob] = [await fresh(), await fresh()]
        const parts = randomParts(3, 4096)
        await deleteAndPurge(ann, (await uploadParts(ann, 'x.bin', parts)).id)
        await server.services.gc.run()
        server.advance(PAST_GRACE_MS)

        const held = hold(step)
        const stalled = server.services.gc.run()
        await held.arrived
        // Long enough later that the stalled collector's claims look abandoned.
        server.advance(PAST_GRACE_MS)
        const other = await secondCollector().run()
        expect(other.errors).toEqual([])

        // Gone now, so uploaded whole again, and referenced by a live file.
        const again = await uploadParts(bob, 'again.bin', parts)
        for (const part of parts) expect(await copiesOnDisk(server.dataDir, sha256(part))).toHaveLength(1)

        held.release()
        const report = await stalled
        expect(report.errors).toEqual([])
        // Each chunk counted once, by the collector that removed its row.
        expect(report.swept + other.swept).toBe(parts.length)
        const download = await bob.download(again.id)
        expect(download.status).toBe(200)
        expect(download.body.equals(concat(parts))).toBe(true)
        for (const part of parts) {
          expect(await copiesOnDisk(server.dataDir, sha256(part))).toEqual([
            await rowCopyPath(server, sha256(part)),
          ])
        }
        const scrub = await server.services.scrubber.run()
        expect(scrub.clean, JSON.stringify(scrub)).toBe(true)
      },
    )
  }

  it.skipIf(!available)(
    'three collectors finishing the same abandoned claims at once: no deadlock, every copy and row gone once',
    async () => {
      const ann = await fresh()
      const parts = randomParts(300, 64)
      await deleteAndPurge(ann, (await uploadParts(ann, 'many.bin', parts)).id)
      await server.services.gc.run()
      server.advance(PAST_GRACE_MS)
      // A collector that claimed everything and died before deleting anything.
      const claimed = await server.services.meta.transaction(async (tx) => {
        await tx.chunks.guard('collect')
        return tx.collector.claim(server.now() - GRACE_MS, server.now(), 1000)
      })
      expect(claimed.length).toBeGreaterThanOrEqual(parts.length)
      server.advance(PAST_GRACE_MS)
      const collectors = Array.from(
        { length: 3 },
        () =>
          new GarbageCollector(server.services.meta, server.services.blobs, () => server.now(), {
            graceMs: GRACE_MS,
            batchSize: 25,
          }),
      )
      const reports = await Promise.all(collectors.map((collector) => collector.run()))
      for (const report of reports) expect(report.errors).toEqual([])
      expect(reports.reduce((sum, report) => sum + report.resumed, 0)).toBeGreaterThanOrEqual(parts.length)
      for (const part of parts) {
        expect(await server.services.meta.chunks.find(sha256(part))).toBeNull()
        expect(await copiesOnDisk(server.dataDir, sha256(part))).toEqual([])
      }
    },
  )

  it.skipIf(!available)(
    'a `tessera gc` process stopped (SIGSTOP) after its claim, resumed after another collector finished and the chunk was uploaded again',
    { timeout: 60_000 },
    async () => {
      const [ann, bob] = [await fresh(), await fresh()]
      const parts = randomParts(3, 4096)
      await deleteAndPurge(ann, (await uploadParts(ann, 'y.bin', parts)).id)
      // The command runs on the real clock: the server marks the garbage two grace periods before it.
      const toRealTime = Date.now() - server.now()
      server.advance(toRealTime - 2 * PAST_GRACE_MS)
      await server.services.gc.run()
      server.advance(2 * PAST_GRACE_MS)

      const command = spawnTessera(['gc', '--json'], {
        ...server.storeEnv,
        TESSERA_STOP_AT: 'gc.sweep.after-claim',
      })
      try {
        await stopped(command.process)
        const claimed = await Promise.all(parts.map((part) => server.services.meta.chunks.find(sha256(part))))
        expect(claimed.map((row) => row?.state)).toEqual(['deleting', 'deleting', 'deleting'])

        // The server's collector, a grace period later, finishes the stopped one's claims.
        server.advance(PAST_GRACE_MS)
        const other = await server.services.gc.run()
        expect(other.resumed).toBeGreaterThanOrEqual(3)
        const again = await uploadParts(bob, 'again.bin', parts)

        command.process.kill('SIGCONT')
        const { code, stdout } = await command.exited
        expect(code, stdout).toBe(0)
        expect(JSON.parse(stdout.trim()).errors).toEqual([])
        const download = await bob.download(again.id)
        expect(download.body.equals(concat(parts))).toBe(true)
        expect((await server.services.scrubber.run()).clean).toBe(true)
      } finally {
        command.process.kill('SIGKILL')
      }
    },
  )
})

/** Resolves once the process has stopped itself (state T in /proc), fails if it exits instead. */
async function stopped(child: ChildProcess): Promise<void> {
  for (let i = 0; i < 600; i++) {
    if (child.exitCode !== null) throw new Error(`the command exited (${child.exitCode}) instead of stopping`)
    const stat = await readFile(`/proc/${child.pid}/stat`, 'utf8').catch(() => '')
    // Fields after the command name in parentheses: the first is the state.
    if (stat.slice(stat.lastIndexOf(')') + 2).startsWith('T')) return
    await new Promise((resolve) => setTimeout(resolve, 100))
  }
  throw new Error('the command never stopped')
}

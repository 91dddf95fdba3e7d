import { randomBytes } from 'node:crypto'
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { afterAll, describe, expect, it } from 'vitest'
import { PowerLossFileSystem } from '../../../test/helpers/power-loss-fs.js'
import { bodyOf, fingerprint, readAll } from '../../../test/helpers/streams.js'
import {
  type BlobKey,
  blobName,
  LEGACY_GENERATION,
  newGeneration,
  parseBlobName,
} from '../../domain/blob-key.js'
import { sha256Hex } from '../../domain/hashes.js'
import type { StoredBlob } from '../../ports/blob-store.js'
import { DiskBlobStore } from './disk-blob-store.js'

const scratch = await mkdtemp(join(tmpdir(), 'tessera-disk-power-loss-'))
afterAll(() => rm(scratch, { recursive: true, force: true }))

const KiB = 1024
/** Temp files older than this are stale to a reopened store; the tests wait this long first. */
const STALE_TEMP_AGE_MS = 5

interface Chunk {
  key: BlobKey
  data: Buffer
}

const chunkOf = (data: Buffer, generation = newGeneration()): Chunk => ({
  key: { hash: sha256Hex(data), generation },
  data,
})

/** A chunk whose hash starts with `prefix` but not with `notPrefix` (found by trying: 1 in 256 for two digits). */
function chunkStartingWith(prefix: string, notPrefix: string, size: number): Chunk {
  for (;;) {
    const chunk = chunkOf(randomBytes(size))
    if (chunk.key.hash.startsWith(prefix) && !chunk.key.hash.startsWith(notPrefix)) return chunk
  }
}

/** An empty root, a shim over it, and a store on the shim that has not even run init() yet. */
async function freshStore() {
  const root = join(scratch, randomBytes(6).toString('hex'))
  const shim = await PowerLossFileSystem.over(root)
  return { root, shim, store: reopen(root, shim) }
}

/** A store on what is on disk at `root`, as a restarted server opens it; on node:fs by default. */
const reopen = (root: string, fileSystem?: PowerLossFileSystem) =>
  new DiskBlobStore({ root, fileSystem, staleTempAgeMs: STALE_TEMP_AGE_MS })

const put = (store: DiskBlobStore, { key, data }: Chunk) => store.put(key, bodyOf(data))

const contentOf = async (store: DiskBlobStore, key: BlobKey) => {
  const body = await store.get(key)
  return body === null ? null : fingerprint(await readAll(body))
}

async function listAll(store: DiskBlobStore): Promise<StoredBlob[]> {
  const found: StoredBlob[] = []
  for await (const blob of store.list()) found.push(blob)
  return found
}

const sameKey = (a: BlobKey) => (b: BlobKey) => a.hash === b.hash && a.generation === b.generation

/** The whole chunk, through every read the store offers. */
async function expectWhole(store: DiskBlobStore, { key, data }: Chunk, because: string): Promise<void> {
  expect(await contentOf(store, key), because).toEqual(fingerprint(data))
  expect((await store.stat(key))?.size, because).toBe(data.length)
  expect((await listAll(store)).filter(sameKey(key)), because).toMatchObject([{ ...key, size: data.length }])
}

/** None of the chunk, through every read the store offers. */
async function expectAbsent(store: DiskBlobStore, { key }: Chunk, because: string): Promise<void> {
  expect(await store.get(key), because).toBeNull()
  expect(await store.stat(key), because).toBeNull()
  expect((await listAll(store)).filter(sameKey(key)), because).toEqual([])
}

/**
 * Every file in the fan-out holds exactly the bytes its name's hash says, whether or not the
 * store would list it: nothing partial, nothing empty, under any name.
 */
async function expectOnlyWholeChunks(root: string, because: string): Promise<void> {
  for (const outer of await readdir(root)) {
    if (outer === 'tmp') continue
    for (const inner of await readdir(join(root, outer))) {
      for (const name of await readdir(join(root, outer, inner))) {
        const bytes = await readFile(join(root, outer, inner, name))
        expect(sha256Hex(bytes), `${because}: ${outer}/${inner}/${name}`).toBe(parseBlobName(name)?.hash)
      }
    }
  }
}

/** What one cut left, as `sweepCuts` reports it. */
interface CutOutcome {
  calls: number
  /** Whether the put resolved before the power went: it made no more calls than `calls`. */
  resolved: boolean
  /** The last call that reached the disk, for messages. */
  because: string
}

/**
 * Runs a put on a fresh store once per number of file system calls it may make before the
 * power goes, from none up to the first that lets the put resolve. `prepare` readies the store
 * (its calls run before the cut); `afterCut` sees each cut's aftermath.
 */
async function sweepCuts(
  prepare: (store: DiskBlobStore) => Promise<void>,
  afterCut: (cut: { root: string; shim: PowerLossFileSystem; outcome: CutOutcome }) => Promise<void>,
  chunk: Chunk,
): Promise<CutOutcome[]> {
  const outcomes: CutOutcome[] = []
  for (let calls = 0; ; calls += 1) {
    const { root, shim, store } = await freshStore()
    await prepare(store)
    const callsBefore = shim.calls.length
    const powerCut = shim.cutPowerAfter(calls)
    const resolved = await Promise.race([powerCut.then(() => false), put(store, chunk).then(() => true)])
    const last = shim.calls.slice(callsBefore).at(-1)
    const because = `stopped after ${calls} calls (last: ${last ? `${last.operation} ${last.path}` : 'none'})`
    const outcome = { calls, resolved, because }
    await afterCut({ root, shim, outcome })
    outcomes.push(outcome)
    if (resolved) return outcomes
  }
}

/** After the power loss: whole or absent, never partial, and the store works and takes the chunk again. */
async function expectWholeOrAbsentThenRecovers(
  { root, shim, outcome }: { root: string; shim: PowerLossFileSystem; outcome: CutOutcome },
  chunk: Chunk,
  bystanders: Chunk[],
): Promise<boolean> {
  const { because, resolved } = outcome
  await shim.powerLoss()
  const afterwards = reopen(root)
  await afterwards.init()
  await expectOnlyWholeChunks(root, because)
  for (const bystander of bystanders) await expectWhole(afterwards, bystander, `${because}: bystander`)
  const kept = (await contentOf(afterwards, chunk.key)) !== null
  if (kept || resolved) await expectWhole(afterwards, chunk, because)
  else await expectAbsent(afterwards, chunk, because)

  expect(await readdir(join(root, 'tmp')), because).toEqual([])

  // Restarted on the same disk, the same put succeeds and is durable in its turn. (A new shim:
  // the look above went around the old one, and init() fsynced what it made.)
  const recovering = await PowerLossFileSystem.over(root)
  await put(reopen(root, recovering), chunk)
  await recovering.powerLoss()
  await expectWhole(reopen(root), chunk, `${because}, then put again`)
  return kept
}

describe('DiskBlobStore under power loss', () => {
  it('every put that resolved survives a power loss byte for byte, storedAt included', async () => {
    const { root, shim, store } = await freshStore()
    const first = chunkOf(randomBytes(3 * KiB))
    const chunks = [
      first,
      // Its top-level fan-out directory exists; its second-level one does not.
      chunkStartingWith(first.key.hash.slice(0, 2), first.key.hash.slice(0, 4), 5 * KiB),
      // Another copy of the same chunk, into the directory that holds the first.
      chunkOf(first.data),
      chunkOf(randomBytes(7 * KiB), LEGACY_GENERATION),
      chunkOf(Buffer.alloc(0)),
    ]
    for (const chunk of chunks) await put(store, chunk)
    const listedBefore = await listAll(store)

    await shim.powerLoss()
    const afterwards = reopen(root)
    for (const chunk of chunks) await expectWhole(afterwards, chunk, blobName(chunk.key))
    const byName = (a: StoredBlob, b: StoredBlob) => blobName(a).localeCompare(blobName(b))
    expect((await listAll(afterwards)).sort(byName)).toEqual(listedBefore.sort(byName))
  })

  describe('a power cut after any number of calls of a put leaves the whole chunk or none of it', () => {
    it('the first chunk of a fresh store (init, new fan-out directories)', async () => {
      const chunk = chunkOf(randomBytes(4 * KiB))
      const kept: boolean[] = []
      const outcomes = await sweepCuts(
        async () => {},
        async (cut) => {
          kept.push(await expectWholeOrAbsentThenRecovers(cut, chunk, []))
        },
        chunk,
      )
      // The sweep covered the put, and saw both outcomes: it can tell them apart.
      expect(outcomes.length).toBeGreaterThan(15)
      expect(kept).toContain(false)
      expect(kept.at(-1)).toBe(true)
    })

    it('a chunk under a new second-level directory of an existing top-level one', async () => {
      const bystander = chunkOf(randomBytes(2 * KiB))
      const [ab, abcd] = [bystander.key.hash.slice(0, 2), bystander.key.hash.slice(0, 4)]
      const chunk = chunkStartingWith(ab, abcd, 6 * KiB)
      const outcomes = await sweepCuts(
        (store) => put(store, bystander),
        (cut) => expectWholeOrAbsentThenRecovers(cut, chunk, [bystander]).then(() => {}),
        chunk,
      )
      expect(outcomes.length).toBeGreaterThan(10)
    })

    it('another copy of a stored chunk, into its existing fan-out directory', async () => {
      const stored = chunkOf(randomBytes(5 * KiB))
      const copy = chunkOf(stored.data)
      const outcomes = await sweepCuts(
        (store) => put(store, stored),
        (cut) => expectWholeOrAbsentThenRecovers(cut, copy, [stored]).then(() => {}),
        copy,
      )
      expect(outcomes.length).toBeGreaterThan(8)
    })
  })

  describe('a process killed in the middle of a put, restarted, then a power loss', () => {
    /**
     * SIGKILL keeps the page cache: the restarted process sees what the killed one did, durable
     * or not, and a put it acknowledges must be durable all the same. Answers whether that put
     * was lost; anything else wrong fails here.
     */
    async function killRestartPutThenLosePower(
      { root, shim, outcome }: { root: string; shim: PowerLossFileSystem; outcome: CutOutcome },
      chunk: Chunk,
      bystanders: Chunk[],
    ): Promise<boolean> {
      await shim.killProcess()
      await sleep(STALE_TEMP_AGE_MS * 2)
      const restarted = reopen(root, shim)
      await restarted.init()
      // init() removed the killed put's temp file, stale by now.
      expect(await readdir(join(root, 'tmp')), outcome.because).toEqual([])
      await put(restarted, chunk)

      await shim.powerLoss()
      const afterwards = reopen(root)
      await expectOnlyWholeChunks(root, outcome.because)
      for (const bystander of bystanders) await expectWhole(afterwards, bystander, outcome.because)
      if ((await contentOf(afterwards, chunk.key)) === null) return true
      await expectWhole(afterwards, chunk, outcome.because)
      return false
    }

    /** The cuts after which the restarted process's acknowledged put did not survive. */
    async function cutsThatLoseTheRestartedPut(chunk: Chunk, bystanders: Chunk[]): Promise<string[]> {
      const lost: string[] = []
      await sweepCuts(
        async (store) => {
          for (const bystander of bystanders) await put(store, bystander)
        },
        async (cut) => {
          if (await killRestartPutThenLosePower(cut, chunk, bystanders)) lost.push(cut.outcome.because)
        },
        chunk,
      )
      return lost
    }

    it('into an existing fan-out directory: the acknowledged put survives', async () => {
      const stored = chunkOf(randomBytes(3 * KiB))
      expect(await cutsThatLoseTheRestartedPut(chunkOf(stored.data), [stored])).toEqual([])
    })

    /**
     * Killed after its mkdir of ab/cd but before it fsynced root/ab and the root, a put leaves
     * fan-out directories whose names are not durable. The restarted put must make them durable
     * before it acknowledges, or the chunk goes with them at the next power cut.
     */
    it('into fan-out directories the killed put was creating: the acknowledged put survives', async () => {
      expect(await cutsThatLoseTheRestartedPut(chunkOf(randomBytes(3 * KiB)), [])).toEqual([])
    })
  })
})

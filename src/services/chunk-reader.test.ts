import { createHash } from 'node:crypto'
import { Readable } from 'node:stream'
import { beforeEach, describe, expect, it } from 'vitest'
import { expectAppError } from '../../test/helpers/app-error.js'
import { serviceScene, storeFile } from '../../test/helpers/service-files.js'
import type { BlobKey } from '../domain/blob-key.js'
import type { NodeRecord, VersionRecord } from '../domain/model.js'
import { ChunkIntegrity, type DamageEvent } from './chunk-integrity.js'
import { ChunkReader, type DownloadPlan } from './chunk-reader.js'

const sha256 = (bytes: Buffer | string): string => createHash('sha256').update(bytes).digest('hex')

/** What a download hands out before it ends, and how it ends. */
async function download(plan: DownloadPlan, start: number, end: number, received: Buffer[] = []) {
  for await (const piece of await plan.open(start, end)) received.push(piece)
  return Buffer.concat(received).toString()
}

describe('ChunkReader', () => {
  const s = serviceScene()
  let damage: DamageEvent[]
  let reader: ChunkReader
  beforeEach(() => {
    damage = []
    const integrity = new ChunkIntegrity(s.fx.meta, s.fx.now, (event) => damage.push(event))
    reader = new ChunkReader(s.fx.meta, s.fx.blobs, integrity, s.services.hashers)
  })

  /** `parts` stored as the chunks of one file, in order. */
  async function storeChunks(
    name: string,
    parts: string[],
  ): Promise<{ file: NodeRecord; version: VersionRecord }> {
    const bytes = parts.map((part) => Buffer.from(part))
    const view = await s.services.uploads.init(s.ann, {
      filename: name,
      size: bytes.reduce((sum, part) => sum + part.length, 0),
      chunkHashes: bytes.map(sha256),
      chunkSizes: bytes.map((part) => part.length),
    })
    for (const index of view.chunksNeeded) {
      const part = bytes[index] as Buffer
      await s.services.uploads.putChunk({
        user: s.ann,
        uploadId: view.uploadId,
        index,
        hash: sha256(part),
        contentLength: part.length,
        body: Readable.from([part]),
      })
    }
    const { file } = await s.services.uploads.complete(s.ann, view.uploadId)
    return { file, version: (await s.fx.meta.versions.find(file.id, 1)) as VersionRecord }
  }
  /** The stored copy of a chunk holding `part`. */
  const copyOf = async (part: string): Promise<BlobKey> => {
    const chunk = await s.fx.meta.chunks.find(sha256(part))
    if (!chunk) throw new Error(`no chunk holds ${part}`)
    return { hash: chunk.hash, generation: chunk.generation }
  }
  /** Overwrites a stored copy with other bytes, as a failing disk would. */
  const corrupt = async (key: BlobKey, bytes: string) => {
    await s.fx.blobs.delete(key)
    await s.fx.blobs.put(key, Readable.from([Buffer.from(bytes)]))
  }

  it('streams the bytes of a version, whole or any range across its chunks', async () => {
    const { file, version } = await storeChunks('a.txt', ['hello ', 'brave ', 'world'])
    const plan = reader.plan(file, version)
    expect(await download(plan, 0, 16)).toBe('hello brave world')
    expect(await download(plan, 3, 13)).toBe('lo brave wo')
    expect(await download(plan, 6, 11)).toBe('brave ')
    expect(await download(plan, 16, 16)).toBe('d')
    expect(damage).toEqual([])
  })

  it('fails a download whose chunk reads wrong with CONTENT_DAMAGED, before that chunk’s bytes go out', async () => {
    const { file, version } = await storeChunks('a.txt', ['hello ', 'brave ', 'world'])
    const key = await copyOf('brave ')
    await corrupt(key, 'BRAVE ')
    const received: Buffer[] = []
    const error = await expectAppError(
      download(reader.plan(file, version), 0, 16, received),
      'CONTENT_DAMAGED',
    )
    expect(error.details).toEqual({ chunk: 1 })
    expect(Buffer.concat(received).toString()).toBe('hello ')
    expect(damage).toEqual([
      {
        ...key,
        source: 'download',
        problem: `reads as ${sha256('BRAVE ')} (6 bytes, 6 expected)`,
        marked: true,
      },
    ])
    expect(await s.fx.meta.chunks.find(key.hash)).toMatchObject({ damaged: true, state: 'live' })
  })

  it('refuses, before streaming, a range over a chunk known to be damaged; other ranges still download', async () => {
    const { file, version } = await storeChunks('a.txt', ['hello ', 'brave ', 'world'])
    const key = await copyOf('brave ')
    await s.fx.blobs.delete(key)
    const plan = reader.plan(file, version)
    await expectAppError(download(plan, 6, 8), 'CONTENT_DAMAGED')
    expect(damage).toMatchObject([{ hash: key.hash, problem: 'missing', marked: true }])

    // Now known: open itself refuses, so the caller can still answer with an error status.
    await expectAppError(plan.open(0, 16), 'CONTENT_DAMAGED')
    expect(await download(plan, 0, 5)).toBe('hello ')
    expect(await download(plan, 12, 16)).toBe('world')
    expect(damage).toHaveLength(1)
  })

  it('is repaired by uploading the same bytes again', async () => {
    const stored = await storeFile(s.services, s.ann, 'a.txt', 'precious')
    const version = (await s.fx.meta.versions.find(stored.id, 1)) as VersionRecord
    await s.fx.blobs.delete(await copyOf('precious'))
    await expectAppError(download(reader.plan(stored, version), 0, 7), 'CONTENT_DAMAGED')

    await storeFile(s.services, s.ann, 'a.txt', 'precious', { baseVersion: 1 })
    expect(await download(reader.plan(stored, version), 0, 7)).toBe('precious')
  })

  it('answers NOT_FOUND for a version gone since it was found (another one now has its number)', async () => {
    const { file, version } = await storeChunks('a.txt', ['hello'])
    const replaced = { ...version, id: '00000000-0000-4000-8000-000000000000' }
    await expectAppError(reader.plan(file, replaced).open(0, 4), 'NOT_FOUND')
  })

  it('answers NOT_FOUND, reporting no damage, when the copy it read went away as the chunk moved on', async () => {
    const { file, version } = await storeChunks('a.txt', ['hello'])
    const old = await copyOf('hello')
    const stream = await reader.plan(file, version).open(0, 4)
    // Meanwhile the copy was found damaged, repaired under another generation, and removed.
    await s.fx.meta.chunks.markDamaged(old, s.fx.now())
    await s.fx.meta.chunks.replaceDamaged(old.hash, old.generation, 'aaaaaaaaaaaaaaaa', s.fx.now())
    await s.fx.blobs.delete(old)
    const read = async () => {
      for await (const _ of stream);
    }
    await expectAppError(read(), 'NOT_FOUND')
    expect(damage).toEqual([])
  })
})

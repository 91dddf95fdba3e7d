import { randomBytes } from 'node:crypto'
import { access, readdir } from 'node:fs/promises'
import path from 'node:path'
import { expect } from 'vitest'
import { type BlobKey, blobName } from '../../src/domain/blob-key.js'
import type { ChunkRecord } from '../../src/domain/model.js'
import type { GcReport } from '../../src/services/garbage-collector.js'
import type { ScrubReport } from '../../src/services/scrubber.js'
import { type ApiClient, hmac, sha256 } from '../helpers/api-client.js'
import type { TestServer } from '../helpers/test-server.js'

/** The collector's grace period with the default GC_GRACE_SECONDS (3600). */
export const GRACE_MS = 3600_000
/** Upload sessions live this long with the default UPLOAD_TTL_HOURS (24). */
export const UPLOAD_TTL_MS = 24 * 3600_000
/** A step of the virtual clock that always takes a chunk marked before it past the grace period. */
export const PAST_GRACE_MS = GRACE_MS + 1000

/** Small chunks (declared with `chunkSizes`) keep many-chunk files cheap. */
export function randomParts(count: number, size = 1024): Buffer[] {
  return Array.from({ length: count }, (_, i) => randomBytes(size + i))
}

export const concat = (parts: readonly Buffer[]): Buffer => Buffer.concat(parts)

/** POST /upload/init declaring exactly these parts as the chunks. */
export function initParts(
  client: ApiClient,
  filename: string,
  parts: readonly Buffer[],
  extra: Record<string, unknown> = {},
) {
  return client.post('/upload/init', {
    filename,
    size: parts.reduce((sum, part) => sum + part.length, 0),
    chunkHashes: parts.map(sha256),
    chunkSizes: parts.map((part) => part.length),
    ...extra,
  })
}

/** The whole upload flow with declared parts; answers the file as `complete` presents it. */
export async function uploadParts(
  client: ApiClient,
  filename: string,
  parts: readonly Buffer[],
  extra: Record<string, unknown> = {},
): Promise<any> {
  const init = await initParts(client, filename, parts, extra)
  expect(init.status, JSON.stringify(init.body)).toBe(201)
  const { uploadId, proofNonce } = init.body
  for (const index of init.body.chunksNeeded as number[]) {
    const put = await client.putChunk(uploadId, index, parts[index] as Buffer)
    expect(put.status, JSON.stringify(put.body)).toBe(200)
  }
  const toProve = init.body.chunksToProve as number[]
  if (toProve.length > 0) {
    const proofs = Object.fromEntries(toProve.map((i) => [i, hmac(proofNonce, parts[i] as Buffer)]))
    const proved = await client.post(`/upload/${uploadId}/prove`, { proofs })
    expect(proved.status, JSON.stringify(proved.body)).toBe(200)
  }
  const done = await client.post(`/upload/${uploadId}/complete`)
  expect(done.status, JSON.stringify(done.body)).toBe(201)
  return done.body.file
}

/** Moves a file to the trash and purges it there: its chunks lose their references. */
export async function deleteAndPurge(client: ApiClient, fileId: string): Promise<void> {
  expect((await client.delete(`/files/${fileId}`)).status).toBe(204)
  expect((await client.delete(`/trash/${fileId}`)).status).toBe(204)
}

/** Advances the server's clock past the grace period, then runs the collector once. */
export async function gcAfterGrace(server: TestServer): Promise<GcReport> {
  server.advance(PAST_GRACE_MS)
  const report = await server.services.gc.run()
  expect(report.errors).toEqual([])
  return report
}

/**
 * The chunks the collector has marked and would claim once their grace period is over (marked at
 * any time, unreferenced, named by no upload session).
 */
export async function markedGarbage(server: TestServer): Promise<string[]> {
  const due = await server.services.meta.collector.claimable(Number.MAX_SAFE_INTEGER, 1_000_000)
  return due.map((chunk) => chunk.hash)
}

/** The fan-out directory where the disk blob store keeps every copy of a hash: DATA_DIR/chunks/ab/cd. */
export const fanoutDir = (dataDir: string, hash: string): string =>
  path.join(dataDir, 'chunks', hash.slice(0, 2), hash.slice(2, 4))

/**
 * Where the disk blob store keeps one copy of a chunk: DATA_DIR/chunks/ab/cd/<hash>.<generation>,
 * or DATA_DIR/chunks/ab/cd/<hash> for a copy stored before generations (generation '').
 */
export const copyPath = (dataDir: string, copy: BlobKey): string =>
  path.join(fanoutDir(dataDir, copy.hash), blobName(copy))

/** The path of the copy the chunk's row names (whatever the row's state); throws without a row. */
export async function rowCopyPath(server: TestServer, hash: string): Promise<string> {
  const row = await server.services.meta.chunks.find(hash)
  if (!row) throw new Error(`chunk ${hash} has no row`)
  return copyPath(server.dataDir, row)
}

/**
 * Every copy of this hash on disk, of any generation (looked at directly, not through the store):
 * the names in its fan-out directory that are the hash or start with `<hash>.`, as sorted paths.
 */
export async function copiesOnDisk(dataDir: string, hash: string): Promise<string[]> {
  const dir = fanoutDir(dataDir, hash)
  let names: string[]
  try {
    names = await readdir(dir)
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return []
    throw error
  }
  return names
    .filter((name) => name === hash || name.startsWith(`${hash}.`))
    .sort()
    .map((name) => path.join(dir, name))
}

export async function fileExists(file: string): Promise<boolean> {
  try {
    await access(file)
    return true
  } catch {
    return false
  }
}

/**
 * A chunk's row; whether the copy it names is on disk; and every copy of the hash on disk, of
 * any generation (looked at directly, not through the store).
 */
export async function chunkState(
  server: TestServer,
  hash: string,
): Promise<{ row: ChunkRecord | null; onDisk: boolean; copies: string[] }> {
  const row = await server.services.meta.chunks.find(hash)
  return {
    row,
    onDisk: row !== null && (await fileExists(copyPath(server.dataDir, row))),
    copies: await copiesOnDisk(server.dataDir, hash),
  }
}

/** The chunk has a row and the copy it names is on disk: its bytes are kept. */
export async function rowCopyOnDisk(server: TestServer, hash: string): Promise<boolean> {
  return (await chunkState(server, hash)).onDisk
}

/** Every hash is stored: a live row, and the copy it names on disk. */
export async function expectStored(server: TestServer, hashes: readonly string[], label = ''): Promise<void> {
  for (const hash of hashes) {
    const { row, onDisk } = await chunkState(server, hash)
    expect(row?.state, `${label} row of ${hash}`).toBe('live')
    expect(onDisk, `${label} bytes of ${hash}`).toBe(true)
  }
}

/** Every hash is gone: no row, and no copy of any generation on disk. */
export async function expectCollected(
  server: TestServer,
  hashes: readonly string[],
  label = '',
): Promise<void> {
  for (const hash of hashes) {
    const { row, copies } = await chunkState(server, hash)
    expect(row, `${label} row of ${hash}`).toBeNull()
    expect(copies, `${label} bytes of ${hash}`).toEqual([])
  }
}

/**
 * A full scrub finds nothing wrong: every chunk whole, none damaged, every count and size exact,
 * nothing dangling.
 */
export async function expectScrubClean(server: TestServer): Promise<ScrubReport> {
  const report = await server.services.scrubber.run()
  expect(report.refCountMismatches).toEqual([])
  expect(report.danglingReferences).toEqual([])
  expect(report.missing).toEqual([])
  expect(report.corrupt).toEqual([])
  expect(report.readErrors).toEqual([])
  expect(report.markedDamaged).toEqual([])
  expect(report.damaged).toBe(0)
  expect(report.sizeMismatches).toEqual([])
  expect(report.unknown).toEqual([])
  expect(report.storeErrors).toEqual([])
  expect(report.clean).toBe(true)
  return report
}

/** `count` distinct items of `items`, chosen with `random` (a partial Fisher-Yates shuffle). */
export function pick<T>(items: readonly T[], count: number, random: () => number): T[] {
  const pool = [...items]
  for (let i = 0; i < count; i++) {
    const j = i + Math.floor(random() * (pool.length - i))
    ;[pool[i], pool[j]] = [pool[j] as T, pool[i] as T]
  }
  return pool.slice(0, count)
}

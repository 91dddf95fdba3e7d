import { expect } from 'vitest'
import type { BlobKey } from '../../src/domain/blob-key.js'
import { AppError } from '../../src/domain/errors.js'
import { sha256Hex } from '../../src/domain/hashes.js'
import { newId } from '../../src/domain/ids.js'
import type {
  ChunkRecord,
  ChunkRef,
  NodeRecord,
  UploadChunkRecord,
  UploadRecord,
  User,
  VersionRecord,
} from '../../src/domain/model.js'
import type { MetadataStore, Repositories } from '../../src/ports/metadata-store.js'

/** Records to feed a MetadataStore in tests: valid, with overridable fields. */

export const T0 = 1_700_000_000_000
export const GiB = 1024 ** 3

export const hash = (seed: string | number): string => sha256Hex(String(seed))

/** A user and its root folder, inserted (user first, as the services do). */
export async function insertUser(repos: Repositories, overrides: Partial<User> = {}): Promise<User> {
  const id = overrides.id ?? newId()
  const user: User = {
    id,
    email: `${id}@example.test`,
    passwordHash: 'argon2id$fake',
    quotaBytes: 10 * GiB,
    usedBytes: 0,
    rootFolderId: newId(),
    createdAt: T0,
    ...overrides,
  }
  await repos.users.insert(user)
  await repos.nodes.insert(node({ id: user.rootFolderId, ownerId: user.id, parentId: null, name: '' }))
  return user
}

export function node(overrides: Partial<NodeRecord> & Pick<NodeRecord, 'ownerId' | 'parentId'>): NodeRecord {
  return {
    id: newId(),
    kind: 'folder',
    name: `node-${newId()}`,
    size: 0,
    currentVersion: null,
    contentHash: null,
    createdAt: T0,
    updatedAt: T0,
    deletedAt: null,
    trashRootId: null,
    // As the store answers for a node whose children never changed.
    listingVersion: 0,
    ...overrides,
  }
}

export async function insertFolder(repos: Repositories, owner: User, parentId: string, name: string) {
  const folder = node({ ownerId: owner.id, parentId, name, kind: 'folder' })
  await repos.nodes.insert(folder)
  return folder
}

export async function insertFile(repos: Repositories, owner: User, parentId: string, name: string, size = 0) {
  const file = node({
    ownerId: owner.id,
    parentId,
    name,
    kind: 'file',
    size,
    currentVersion: 1,
    contentHash: hash(`content of ${name}`),
  })
  await repos.nodes.insert(file)
  return file
}

/** Consecutive chunks of the given sizes, hashed from `seed` and their index. */
export function chunkList(sizes: readonly number[], seed = 'chunk'): ChunkRef[] {
  let offset = 0
  return sizes.map((size, index) => {
    const chunk = { index, hash: hash(`${seed}-${index}`), size, offset }
    offset += size
    return chunk
  })
}

/** Inserts a version of `file` (version 1 unless told) with these chunks. */
export async function insertVersion(
  store: Repositories,
  file: NodeRecord,
  chunks: readonly ChunkRef[],
  overrides: Partial<Omit<VersionRecord, 'nodeId'>> = {},
): Promise<VersionRecord> {
  const number = overrides.version ?? 1
  const version: VersionRecord = {
    id: newId(),
    nodeId: file.id,
    version: number,
    size: chunks.reduce((sum, chunk) => sum + chunk.size, 0),
    contentHash: hash(`version ${number} of ${file.id}`),
    authorId: file.ownerId,
    createdAt: T0,
    ...overrides,
  }
  await store.versions.insert(version, chunks)
  return version
}

/** Chunk refs naming these hashes in this order (a hash may repeat), 1 byte each. */
export function refsTo(hashes: readonly string[]): ChunkRef[] {
  return hashes.map((chunkHash, index) => ({ index, hash: chunkHash, size: 1, offset: index }))
}

/**
 * The generation a fixture's copy of `chunkHash` is recorded under: fixed per hash, so that tests
 * can name it (as the upload service would a fresh random one).
 */
export const generationOf = (chunkHash: string): string =>
  sha256Hex(`generation of ${chunkHash}`).slice(0, 16)

/** A live, sound, unreferenced chunk row as the store answers it. */
export function liveChunk(chunkHash: string, size = 1, refCount = 0): ChunkRecord {
  return {
    hash: chunkHash,
    size,
    refCount,
    state: 'live',
    generation: generationOf(chunkHash),
    damaged: false,
  }
}

/** Live chunk rows of `size` bytes for these hashes (copies under generationOf), unreferenced, unmarked. */
export async function insertChunks(repos: Repositories, hashes: readonly string[], size = 1): Promise<void> {
  for (const chunkHash of hashes) {
    await repos.chunks.insert({ hash: chunkHash, size, generation: generationOf(chunkHash) }, T0)
  }
}

/**
 * A row in state `deleting` (as the collector leaves a claimed chunk), claimed at `at`: made the
 * collector's way, inserted, marked and claimed in one transaction. A mark takes every
 * unreferenced live chunk, so this refuses (and changes nothing) while another unreferenced live
 * chunk is unmarked, or marked and claimable by `at`: make deleting rows before such chunks.
 */
export async function insertDeletingChunk(
  store: MetadataStore,
  chunkHash: string,
  size = 1,
  at = T0,
  generation = generationOf(chunkHash),
): Promise<void> {
  await store.transaction(async (tx) => {
    if ((await tx.collector.countUnmarked()) > 0 || (await tx.collector.claimable(at, 1)).length > 0) {
      throw new Error(`fixture: make the deleting row ${chunkHash} before other unreferenced live chunks`)
    }
    if (!(await tx.chunks.insert({ hash: chunkHash, size, generation }, at))) {
      throw new Error(`fixture: ${chunkHash} has a row already`)
    }
    await tx.collector.mark(at)
    const claimed = await tx.collector.claim(at, at, 2)
    if (claimed.length !== 1 || claimed[0]?.hash !== chunkHash) {
      throw new Error(`fixture: ${chunkHash} could not be made a deleting row`)
    }
  })
}

/** An upload session record (not inserted); valid, with overridable fields. */
export function uploadRecord(
  userId: string,
  folderId: string,
  overrides: Partial<UploadRecord> = {},
): UploadRecord {
  return {
    id: newId(),
    userId,
    folderId,
    filename: 'movie.mkv',
    size: 10,
    chunkSize: 4,
    totalChunks: 3,
    baseVersion: null,
    proofNonce: hash('nonce').slice(0, 32),
    createdAt: T0,
    expiresAt: T0 + 1000,
    ...overrides,
  }
}

/** Inserts an upload session of `owner` whose chunk list names these hashes (state `needed`). */
export async function insertUploadNaming(
  repos: Repositories,
  owner: User,
  hashes: readonly string[],
): Promise<UploadRecord> {
  const chunks: UploadChunkRecord[] = refsTo(hashes).map((ref) => ({ ...ref, state: 'needed' }))
  const upload = uploadRecord(owner.id, owner.rootFolderId, {
    size: chunks.length,
    chunkSize: 1,
    totalChunks: chunks.length,
  })
  await repos.uploads.insert(upload, chunks)
  return upload
}

/** Byte-wise UTF-8 order: SQLite's BINARY collation, PostgreSQL's "C". */
export const binaryCompare = (a: string, b: string): number => Buffer.compare(Buffer.from(a), Buffer.from(b))

/** Awaits `promise` and expects it to fail with an AppError of this code. */
export async function rejectsWithCode(promise: Promise<unknown>, code: string): Promise<void> {
  const error = await promise.then(
    () => null,
    (caught: unknown) => caught,
  )
  expect(error).toBeInstanceOf(AppError)
  expect((error as AppError).code).toBe(code)
}

/** The hashes of these chunk records, sorted: for answers whose order is not promised. */
export const hashesOf = (chunks: readonly ChunkRecord[]): string[] => chunks.map((c) => c.hash).sort()
export const sorted = (items: Iterable<string>): string[] => [...items].sort()

/** A claimed chunk row as the store answers it (its copy under generationOf unless told). */
export const deleting = (chunkHash: string, size = 1, generation = generationOf(chunkHash)): ChunkRecord => ({
  hash: chunkHash,
  size,
  refCount: 0,
  state: 'deleting',
  generation,
  damaged: false,
})

/** The copy a fixture recorded for a hash (insertChunks, insertDeletingChunk). */
export const copyOf = (chunkHash: string): BlobKey => ({
  hash: chunkHash,
  generation: generationOf(chunkHash),
})

/** By hash, then generation: for answers whose order is not promised. */
export const byCopy = (a: BlobKey, b: BlobKey): number =>
  binaryCompare(a.hash, b.hash) || binaryCompare(a.generation, b.generation)

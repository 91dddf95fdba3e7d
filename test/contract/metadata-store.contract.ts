import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { type BlobKey, LEGACY_GENERATION, newGeneration } from '../../src/domain/blob-key.js'
import { AppError } from '../../src/domain/errors.js'
import { newId } from '../../src/domain/ids.js'
import type {
  ChunkRecord,
  NodeRecord,
  UploadChunkRecord,
  UploadRecord,
  User,
} from '../../src/domain/model.js'
import type { UploadCompletion } from '../../src/ports/metadata/upload-repository.js'
import type { MetadataStore } from '../../src/ports/metadata-store.js'
import { journalContract } from './journal.contract.js'
import {
  binaryCompare,
  chunkList,
  generationOf,
  hash,
  insertChunks,
  insertDeletingChunk,
  insertFile,
  insertFolder,
  insertUploadNaming,
  insertUser,
  insertVersion,
  liveChunk,
  refsTo,
  T0,
  uploadRecord,
} from './metadata-fixtures.js'
import { upkeepContract } from './upkeep.contract.js'

export interface OpenedMetadataStore {
  store: MetadataStore
  cleanup(): Promise<void>
}

const rejectsWithCode = async (promise: Promise<unknown>, code: string) => {
  const error = await promise.then(
    () => null,
    (caught: unknown) => caught,
  )
  expect(error).toBeInstanceOf(AppError)
  expect((error as AppError).code).toBe(code)
}

const UPLOAD_CHUNK_STATES = ['needed', 'prove', 'ok'] as const

/** The hashes of these chunk records, sorted: for answers whose order is not promised. */
const hashesOf = (chunks: readonly ChunkRecord[]): string[] => chunks.map((c) => c.hash).sort()
const sorted = (items: Iterable<string>): string[] => [...items].sort()
/** A claimed chunk row as the store answers it (its copy under generationOf unless told). */
const deleting = (chunkHash: string, size = 1, generation = generationOf(chunkHash)): ChunkRecord => ({
  hash: chunkHash,
  size,
  refCount: 0,
  state: 'deleting',
  generation,
  damaged: false,
})
/** The copy a fixture recorded for a hash (insertChunks, insertDeletingChunk). */
const copyOf = (chunkHash: string): BlobKey => ({ hash: chunkHash, generation: generationOf(chunkHash) })
/** By hash, then generation: for answers whose order is not promised. */
const byCopy = (a: BlobKey, b: BlobKey): number =>
  binaryCompare(a.hash, b.hash) || binaryCompare(a.generation, b.generation)

/**
 * What every MetadataStore promises (src/ports/metadata-store.ts). Each adapter's test file
 * calls this with a factory that opens a fresh, empty, migrated store.
 */
export function metadataStoreContract(open: () => Promise<OpenedMetadataStore>): void {
  let store: MetadataStore
  let cleanup: () => Promise<void>

  beforeEach(async () => {
    ;({ store, cleanup } = await open())
  })
  afterEach(async () => {
    await cleanup()
  })

  journalContract(() => store)
  upkeepContract(() => store)

  it('answers ping', async () => {
    await expect(store.ping()).resolves.toBeUndefined()
  })

  describe('users', () => {
    it('round-trips a user with numbers as numbers', async () => {
      const user = await insertUser(store, { quotaBytes: 16 * 1024 ** 4, usedBytes: 123 })
      expect(await store.users.findById(user.id)).toEqual(user)
      expect(await store.users.findByEmail(user.email)).toEqual(user)
      expect(await store.users.findById(newId())).toBeNull()
      expect(await store.users.findByEmail('nobody@example.test')).toBeNull()
    })

    it('refuses a second user with the same email (EMAIL_TAKEN)', async () => {
      const first = await insertUser(store)
      await rejectsWithCode(insertUser(store, { email: first.email }), 'EMAIL_TAKEN')
    })

    it('enforces the quota in addUsedBytes only when asked', async () => {
      const user = await insertUser(store, { quotaBytes: 100 })
      expect(await store.users.addUsedBytes(user.id, 60, true)).toBe(true)
      expect(await store.users.addUsedBytes(user.id, 41, true)).toBe(false)
      expect((await store.users.findById(user.id))?.usedBytes).toBe(60)
      expect(await store.users.addUsedBytes(user.id, 40, true)).toBe(true)
      expect(await store.users.addUsedBytes(user.id, 50, false)).toBe(true)
      expect(await store.users.addUsedBytes(user.id, -30, false)).toBe(true)
      expect((await store.users.findById(user.id))?.usedBytes).toBe(120)
      expect(await store.users.addUsedBytes(newId(), 1, false)).toBe(false)
    })

    it('lets only one of two concurrent additions that together exceed the quota succeed', async () => {
      const user = await insertUser(store, { quotaBytes: 10 })
      const results = await Promise.all([
        store.users.addUsedBytes(user.id, 6, true),
        store.users.addUsedBytes(user.id, 6, true),
      ])
      expect(results.filter(Boolean)).toHaveLength(1)
      expect((await store.users.findById(user.id))?.usedBytes).toBe(6)
    })

    it('lets only one of two concurrent transactions that together exceed the quota succeed', async () => {
      const user = await insertUser(store, { quotaBytes: 10 })
      const reserve = () =>
        store.transaction(async (tx) => {
          await tx.users.lockTree(user.id)
          return tx.users.addUsedBytes(user.id, 6, true)
        })
      const results = await Promise.all([reserve(), reserve()])
      expect(results.filter(Boolean)).toHaveLength(1)
      expect((await store.users.findById(user.id))?.usedBytes).toBe(6)
    })
  })

  describe('sessions', () => {
    it('finds a session until it expires, and deletes it', async () => {
      const user = await insertUser(store)
      const session = { tokenHash: hash('token'), userId: user.id, createdAt: T0, expiresAt: T0 + 1000 }
      await store.sessions.insert(session)
      expect(await store.sessions.find(session.tokenHash, T0 + 999)).toEqual(session)
      expect(await store.sessions.find(session.tokenHash, T0 + 1000)).toBeNull()
      expect(await store.sessions.find(hash('other'), T0)).toBeNull()
      await store.sessions.delete(session.tokenHash)
      expect(await store.sessions.find(session.tokenHash, T0)).toBeNull()
    })

    it('deletes expired sessions and counts them', async () => {
      const user = await insertUser(store)
      for (const [seed, expiresAt] of [
        ['a', T0 + 10],
        ['b', T0 + 20],
        ['c', T0 + 30],
      ] as const) {
        await store.sessions.insert({ tokenHash: hash(seed), userId: user.id, createdAt: T0, expiresAt })
      }
      expect(await store.sessions.deleteExpired(T0 + 20)).toBe(2)
      expect(await store.sessions.find(hash('c'), T0 + 20)).not.toBeNull()
      expect(await store.sessions.deleteExpired(T0 + 20)).toBe(0)
    })
  })

  describe('nodes', () => {
    it('round-trips a node and finds it only live and for its owner', async () => {
      const user = await insertUser(store)
      const other = await insertUser(store)
      const file = await insertFile(store, user, user.rootFolderId, 'report.pdf', 1234)
      expect(await store.nodes.findLive(user.id, file.id)).toEqual(file)
      expect(await store.nodes.findLive(other.id, file.id)).toBeNull()
      expect(await store.nodes.findLive(user.id, newId())).toBeNull()
      expect(await store.nodes.findLiveChild(user.rootFolderId, 'report.pdf')).toEqual(file)
      // The same name but for case is the same name (nameKey): what a new sibling would hit.
      expect(await store.nodes.findLiveChild(user.rootFolderId, 'Report.PDF')).toEqual(file)
      expect(await store.nodes.findLiveChild(user.rootFolderId, 'report.pdf ')).toBeNull()
    })

    it('keeps sibling names unique across files and folders (NAME_TAKEN)', async () => {
      const user = await insertUser(store)
      const a = await insertFolder(store, user, user.rootFolderId, 'a')
      await rejectsWithCode(insertFolder(store, user, user.rootFolderId, 'a'), 'NAME_TAKEN')
      await rejectsWithCode(insertFile(store, user, user.rootFolderId, 'a'), 'NAME_TAKEN')
      // Differing only by case, or by Unicode normalisation form, is the same name: macOS and
      // Windows clients could not hold both.
      await rejectsWithCode(insertFile(store, user, user.rootFolderId, 'A'), 'NAME_TAKEN')
      await insertFile(store, user, user.rootFolderId, 'Café')
      await rejectsWithCode(insertFolder(store, user, user.rootFolderId, 'CAFÉ'), 'NAME_TAKEN')
      await rejectsWithCode(insertFolder(store, user, user.rootFolderId, 'cafe\u0301'), 'NAME_TAKEN')
      // The same name elsewhere is another name.
      await insertFile(store, user, a.id, 'a')
    })

    it('lets a node change the case of its own name, and keeps the case it was given', async () => {
      const user = await insertUser(store)
      const root = user.rootFolderId
      const file = await insertFile(store, user, root, 'readme.md')
      const other = await insertFile(store, user, root, 'notes.md')
      await store.nodes.update(file.id, { name: 'README.md', updatedAt: T0 + 1 })
      expect(await store.nodes.findLive(user.id, file.id)).toMatchObject({ name: 'README.md' })
      await rejectsWithCode(
        store.nodes.update(other.id, { name: 'Readme.MD', updatedAt: T0 + 2 }),
        'NAME_TAKEN',
      )
      await store.nodes.trashSubtree(file.id, T0 + 3)
      // Trashed, it frees the name under every case.
      await store.nodes.update(other.id, { name: 'readme.md', updatedAt: T0 + 4 })
      await rejectsWithCode(
        store.nodes.restoreTrash(file.id, { parentId: root, name: 'README.md', updatedAt: T0 + 5 }),
        'NAME_TAKEN',
      )
    })

    it('refuses a rename or a move onto a live sibling name (NAME_TAKEN)', async () => {
      const user = await insertUser(store)
      const root = user.rootFolderId
      const docs = await insertFolder(store, user, root, 'docs')
      const notes = await insertFile(store, user, root, 'notes.txt')
      const inDocs = await insertFile(store, user, docs.id, 'notes.txt')
      await rejectsWithCode(store.nodes.update(notes.id, { name: 'docs', updatedAt: T0 + 1 }), 'NAME_TAKEN')
      await rejectsWithCode(
        store.nodes.update(inDocs.id, { parentId: root, updatedAt: T0 + 1 }),
        'NAME_TAKEN',
      )
      expect(await store.nodes.findLive(user.id, notes.id)).toEqual(notes)

      await store.nodes.update(inDocs.id, { parentId: root, name: 'notes (2).txt', updatedAt: T0 + 5 })
      expect(await store.nodes.findLive(user.id, inDocs.id)).toEqual({
        ...inDocs,
        parentId: root,
        name: 'notes (2).txt',
        updatedAt: T0 + 5,
      })
    })

    it('frees a name when its node is trashed', async () => {
      const user = await insertUser(store)
      const first = await insertFile(store, user, user.rootFolderId, 'draft.txt')
      await store.nodes.trashSubtree(first.id, T0 + 1)
      const second = await insertFile(store, user, user.rootFolderId, 'draft.txt')
      const folder = await insertFolder(store, user, user.rootFolderId, 'other')
      await store.nodes.trashSubtree(second.id, T0 + 2)
      // Two trashed nodes of one name, and a rename onto it.
      await store.nodes.update(folder.id, { name: 'draft.txt', updatedAt: T0 + 3 })
      expect((await store.nodes.findLiveChild(user.rootFolderId, 'draft.txt'))?.id).toBe(folder.id)
    })

    it('keeps a transaction usable after NAME_TAKEN', async () => {
      const user = await insertUser(store)
      await insertFile(store, user, user.rootFolderId, 'taken')
      const moved = await insertFile(store, user, user.rootFolderId, 'moved')
      const saved = await store.transaction(async (tx) => {
        await rejectsWithCode(insertFile(tx, user, user.rootFolderId, 'taken'), 'NAME_TAKEN')
        await rejectsWithCode(tx.nodes.update(moved.id, { name: 'taken', updatedAt: T0 }), 'NAME_TAKEN')
        return insertFile(tx, user, user.rootFolderId, 'taken (conflicted copy)')
      })
      expect(await store.nodes.findLive(user.id, saved.id)).toEqual(saved)
    })

    it("changes a folder's listing version with every change to its live children, and only then", async () => {
      const user = await insertUser(store)
      const a = await insertFolder(store, user, user.rootFolderId, 'a')
      const b = await insertFolder(store, user, user.rootFolderId, 'b')
      const version = async (id: string) => (await store.nodes.findLive(user.id, id))?.listingVersion
      const changes = async (id: string, change: () => Promise<unknown>) => {
        const before = await version(id)
        await change()
        return (await version(id)) !== before
      }
      let file: NodeRecord | undefined
      expect(await changes(a.id, async () => (file = await insertFile(store, user, a.id, 'f')))).toBe(true)
      const id = file!.id
      expect(await changes(a.id, () => store.nodes.update(id, { name: 'g', updatedAt: T0 + 1 }))).toBe(true)
      const current = { version: 2, size: 5, contentHash: hash('v2'), updatedAt: T0 + 2 }
      expect(await changes(a.id, () => store.nodes.setCurrentVersion(id, current))).toBe(true)
      expect(await changes(b.id, () => store.nodes.update(id, { parentId: b.id, updatedAt: T0 + 3 }))).toBe(
        true,
      )
      expect(await version(a.id)).not.toBe(0)
      expect(await changes(b.id, () => store.nodes.trashSubtree(id, T0 + 4))).toBe(true)
      // Changes elsewhere leave it alone: a cached listing of `a` stays valid.
      expect(await changes(a.id, () => insertFile(store, user, b.id, 'elsewhere'))).toBe(false)
      expect(await changes(a.id, () => insertFile(store, user, user.rootFolderId, 'root file'))).toBe(false)
    })

    it('sets the current version of a file', async () => {
      const user = await insertUser(store)
      const file = await insertFile(store, user, user.rootFolderId, 'f', 10)
      const current = { version: 2, size: 20, contentHash: hash('v2'), updatedAt: T0 + 9 }
      await store.nodes.setCurrentVersion(file.id, current)
      expect(await store.nodes.findLive(user.id, file.id)).toEqual({
        ...file,
        currentVersion: 2,
        size: 20,
        contentHash: current.contentHash,
        updatedAt: T0 + 9,
      })
    })

    it('lists live children folders first, by binary name, in keyset pages', async () => {
      const user = await insertUser(store)
      const parent = await insertFolder(store, user, user.rootFolderId, 'big')
      // Case, accents, and characters whose UTF-16 and UTF-8 orders differ (U+FF5E vs U+1F600).
      const special = ['Zeta', 'alpha', 'Äpfel', 'ábc', '😀', '～', '_under', '10', '9', 'a b']
      const names = [
        ...special,
        ...Array.from({ length: 115 }, (_, i) => `item-${String(i).padStart(3, '0')}`),
      ]
      const inserted: NodeRecord[] = []
      for (const name of names) inserted.push(await insertFolder(store, user, parent.id, name))
      for (const name of names) inserted.push(await insertFile(store, user, parent.id, `${name}.txt`))
      const trashed = await insertFile(store, user, parent.id, 'gone.txt')
      await store.nodes.trashSubtree(trashed.id, T0 + 1)

      const expected = [...inserted].sort((a, b) =>
        a.kind === b.kind ? binaryCompare(a.name, b.name) : a.kind === 'folder' ? -1 : 1,
      )
      const listed: NodeRecord[] = []
      let page = await store.nodes.listLiveChildren(parent.id, { limit: 40 })
      while (page.length > 0) {
        listed.push(...page)
        const last = page.at(-1)!
        page = await store.nodes.listLiveChildren(parent.id, {
          limit: 40,
          after: { kind: last.kind, name: last.name },
        })
      }
      expect(listed.map((n) => `${n.kind}:${n.name}`)).toEqual(expected.map((n) => `${n.kind}:${n.name}`))
      expect(listed).toEqual(expected)
      expect(await store.nodes.listLiveChildren(newId(), { limit: 10 })).toEqual([])
    })

    it('continues from the last folder to the first file, and ends with an empty page', async () => {
      const user = await insertUser(store)
      const root = user.rootFolderId
      for (const name of ['b', 'a', 'c']) await insertFolder(store, user, root, name)
      for (const name of ['0', 'D']) await insertFile(store, user, root, name)
      const names = async (page: Parameters<MetadataStore['nodes']['listLiveChildren']>[1]) =>
        (await store.nodes.listLiveChildren(root, page)).map((n) => `${n.kind}:${n.name}`)
      expect(await names({ limit: 3 })).toEqual(['folder:a', 'folder:b', 'folder:c'])
      expect(await names({ limit: 3, after: { kind: 'folder', name: 'c' } })).toEqual(['file:0', 'file:D'])
      expect(await names({ limit: 2, after: { kind: 'folder', name: 'b' } })).toEqual(['folder:c', 'file:0'])
      expect(await names({ limit: 3, after: { kind: 'file', name: '0' } })).toEqual(['file:D'])
      expect(await names({ limit: 3, after: { kind: 'file', name: 'D' } })).toEqual([])
      // `after` need not be an existing name.
      expect(await names({ limit: 1, after: { kind: 'folder', name: 'aa' } })).toEqual(['folder:b'])
    })

    it('walks the lineage up to the root, also for a trashed node', async () => {
      const user = await insertUser(store)
      const a = await insertFolder(store, user, user.rootFolderId, 'a')
      const b = await insertFolder(store, user, a.id, 'b')
      const c = await insertFile(store, user, b.id, 'c')
      const ids = async (id: string) => (await store.nodes.lineage(id)).map((n) => n.id)
      expect(await ids(c.id)).toEqual([c.id, b.id, a.id, user.rootFolderId])
      expect(await ids(user.rootFolderId)).toEqual([user.rootFolderId])
      expect(await ids(newId())).toEqual([])
      await store.nodes.trashSubtree(a.id, T0 + 1)
      const lineage = await store.nodes.lineage(c.id)
      expect(lineage.map((n) => n.id)).toEqual([c.id, b.id, a.id, user.rootFolderId])
      expect(lineage[0]).toMatchObject({ deletedAt: T0 + 1, trashRootId: a.id })
    })

    it('trashes a subtree in one call, counting nodes and file bytes', async () => {
      const user = await insertUser(store)
      const a = await insertFolder(store, user, user.rootFolderId, 'a')
      const f1 = await insertFile(store, user, a.id, 'f1', 10)
      const f2 = await insertFile(store, user, a.id, 'f2', 20)
      const b = await insertFolder(store, user, a.id, 'b')
      const f3 = await insertFile(store, user, b.id, 'f3', 30)
      const earlier = await insertFile(store, user, a.id, 'earlier', 40)
      const outside = await insertFile(store, user, user.rootFolderId, 'outside', 50)
      expect(await store.nodes.trashSubtree(earlier.id, T0 + 1)).toEqual({ nodes: 1, fileBytes: 40 })

      expect(await store.nodes.trashSubtree(a.id, T0 + 2)).toEqual({ nodes: 5, fileBytes: 60 })
      for (const n of [a, f1, f2, b, f3, earlier])
        expect(await store.nodes.findLive(user.id, n.id)).toBeNull()
      expect(await store.nodes.findLive(user.id, outside.id)).toEqual(outside)
      const [trashedF3] = await store.nodes.lineage(f3.id)
      expect(trashedF3).toEqual({ ...f3, deletedAt: T0 + 2, trashRootId: a.id })
      // Trashed before: keeps its own time and trash root.
      const [trashedEarlier] = await store.nodes.lineage(earlier.id)
      expect(trashedEarlier).toMatchObject({ deletedAt: T0 + 1, trashRootId: earlier.id })
      // Already trashed: nothing left to trash.
      expect(await store.nodes.trashSubtree(a.id, T0 + 3)).toEqual({ nodes: 0, fileBytes: 0 })
      await insertFolder(store, user, user.rootFolderId, 'a')
    })
  })

  describe('transactions', () => {
    it('commits what the work wrote and answers its result', async () => {
      const result = await store.transaction(async (tx) => (await insertUser(tx)).id)
      expect(await store.users.findById(result)).not.toBeNull()
    })

    it('rolls back everything when the work throws, and rethrows', async () => {
      const user = await insertUser(store)
      const failure = new Error('boom')
      let inserted: NodeRecord | undefined
      let otherId = ''
      await expect(
        store.transaction(async (tx) => {
          otherId = (await insertUser(tx)).id
          inserted = await insertFolder(tx, user, user.rootFolderId, 'doomed')
          await tx.users.addUsedBytes(user.id, 5, false)
          await tx.chunks.insert({ hash: hash('doomed'), size: 1, generation: newGeneration() }, T0)
          throw failure
        }),
      ).rejects.toBe(failure)
      expect(await store.users.findById(otherId)).toBeNull()
      expect(await store.nodes.findLive(user.id, inserted!.id)).toBeNull()
      expect((await store.users.findById(user.id))?.usedBytes).toBe(0)
      expect(await store.chunks.find(hash('doomed'))).toBeNull()
    })
  })

  describe('chunks', () => {
    it('inserts a chunk once, with the generation of its copy: true, then false, keeping the first', async () => {
      const first = newGeneration()
      expect(await store.chunks.insert({ hash: hash(1), size: 100, generation: first }, T0)).toBe(true)
      // Another upload's copy of the same chunk is refused: the row keeps naming the first.
      expect(
        await store.chunks.insert({ hash: hash(1), size: 100, generation: newGeneration() }, T0 + 1),
      ).toBe(false)
      expect(await store.chunks.insert({ hash: hash(1), size: 100, generation: first }, T0 + 2)).toBe(false)
      expect(await store.chunks.find(hash(1))).toEqual({
        hash: hash(1),
        size: 100,
        refCount: 0,
        state: 'live',
        generation: first,
        damaged: false,
      })
      // A copy stored before generations is recorded under the legacy generation ''.
      expect(await store.chunks.insert({ hash: hash(3), size: 5, generation: LEGACY_GENERATION }, T0)).toBe(
        true,
      )
      expect(await store.chunks.find(hash(3))).toMatchObject({
        generation: LEGACY_GENERATION,
        damaged: false,
      })
      expect(await store.chunks.find(hash(2))).toBeNull()
    })

    it("records exactly one of two concurrent inserts of a chunk, under the winner's generation", async () => {
      const generations = [newGeneration(), newGeneration()]
      const results = await Promise.all(
        generations.map((generation) =>
          store.transaction((tx) => tx.chunks.insert({ hash: hash('race'), size: 1, generation }, T0)),
        ),
      )
      expect(results.filter(Boolean)).toHaveLength(1)
      expect((await store.chunks.find(hash('race')))?.generation).toBe(generations[results.indexOf(true)])
    })

    it('answers the sound chunks with their sizes: live and not damaged', async () => {
      await insertDeletingChunk(store, hash('going'), 9)
      await insertChunks(store, [hash(1), hash(3)], 5)
      await insertChunks(store, [hash(4)], 7)
      await insertChunks(store, [hash('damaged')], 3)
      expect(await store.chunks.markDamaged(copyOf(hash('damaged')), T0)).toBe(true)
      const asked = [hash(1), hash(2), hash(3), hash(1), hash(4), hash('going'), hash('damaged')]
      expect(await store.chunks.sound(asked)).toEqual(
        new Map([
          [hash(1), 5],
          [hash(3), 5],
          [hash(4), 7],
        ]),
      )
      expect(await store.chunks.sound([])).toEqual(new Map())
    })

    it('adds references for thousands of distinct hashes', async () => {
      const hashes = Array.from({ length: 2560 }, (_, i) => hash(i))
      await store.transaction(async (tx) => {
        for (const h of hashes)
          await tx.chunks.insert({ hash: h, size: 4096, generation: generationOf(h) }, T0)
      })
      expect(await store.chunks.sound(hashes)).toEqual(new Map(hashes.map((h) => [h, 4096])))
      const counts = new Map(hashes.map((h, i) => [h, (i % 3) + 1]))
      await store.transaction((tx) => tx.chunks.addReferences(counts))
      await store.chunks.dropReferences(new Map([[hash(0), 1]]))
      expect(await store.chunks.find(hash(0))).toEqual(liveChunk(hash(0), 4096, 0))
      expect((await store.chunks.find(hash(2557)))?.refCount).toBe(2)
      expect((await store.chunks.find(hash(2558)))?.refCount).toBe(3)
      expect((await store.chunks.find(hash(2559)))?.refCount).toBe(1)
    })

    it('answers which hashes the files of a user reference (readableBy), trashed or not', async () => {
      const alice = await insertUser(store)
      const bob = await insertUser(store)
      const aliceFile = await insertFile(store, alice, alice.rootFolderId, 'a', 2)
      const bobFile = await insertFile(store, bob, bob.rootFolderId, 'b', 1)
      await insertVersion(store, aliceFile, [
        { index: 0, hash: hash('h1'), size: 1, offset: 0 },
        { index: 1, hash: hash('h2'), size: 1, offset: 1 },
      ])
      await insertVersion(store, bobFile, [{ index: 0, hash: hash('h3'), size: 1, offset: 0 }])
      const asked = [hash('h1'), hash('h3'), hash('h4')]
      expect(await store.chunks.readableBy(alice.id, asked)).toEqual(new Set([hash('h1')]))
      expect(await store.chunks.readableBy(bob.id, asked)).toEqual(new Set([hash('h3')]))
      await store.nodes.trashSubtree(aliceFile.id, T0 + 1)
      expect(await store.chunks.readableBy(alice.id, asked)).toEqual(new Set([hash('h1')]))
      expect(await store.chunks.readableBy(newId(), asked)).toEqual(new Set())
    })
  })

  describe('damaged chunks', () => {
    it('marks a chunk damaged only through its live, sound copy', async () => {
      await insertDeletingChunk(store, hash('going'))
      await insertChunks(store, [hash('x'), hash('y')])
      await store.chunks.addReferences(new Map([[hash('x'), 2]]))
      // Another copy of the chunk (one replaced or collected meanwhile): not the chunk's fault.
      expect(await store.chunks.markDamaged({ hash: hash('x'), generation: newGeneration() }, T0 + 1)).toBe(
        false,
      )
      expect(await store.chunks.markDamaged({ hash: hash('x'), generation: LEGACY_GENERATION }, T0 + 1)).toBe(
        false,
      )
      expect(await store.chunks.find(hash('x'))).toEqual(liveChunk(hash('x'), 1, 2))

      expect(await store.chunks.markDamaged(copyOf(hash('x')), T0 + 2)).toBe(true)
      // Still live, still referenced: every file holding it keeps it; only dedup stops.
      expect(await store.chunks.find(hash('x'))).toEqual({ ...liveChunk(hash('x'), 1, 2), damaged: true })
      // Marked once: the same damage found again marks nothing.
      expect(await store.chunks.markDamaged(copyOf(hash('x')), T0 + 3)).toBe(false)

      // A claimed chunk is the collector's; no row, nothing to mark.
      expect(await store.chunks.markDamaged(copyOf(hash('going')), T0 + 4)).toBe(false)
      expect(await store.chunks.find(hash('going'))).toEqual(deleting(hash('going')))
      expect(await store.chunks.markDamaged(copyOf(hash('absent')), T0 + 4)).toBe(false)
      expect(await store.chunks.find(hash('absent'))).toBeNull()

      expect(await store.chunks.find(hash('y'))).toEqual(liveChunk(hash('y')))
      expect(await store.audit.countDamaged()).toBe(1)
    })

    it('replaces a damaged copy only from the damaged generation, and clears the mark', async () => {
      await insertChunks(store, [hash('x')])
      await store.chunks.addReferences(new Map([[hash('x'), 3]]))
      const from = generationOf(hash('x'))
      const to = newGeneration()
      // Sound: nothing to replace (an upload that finds it sound deduplicates instead).
      expect(await store.chunks.replaceDamaged(hash('x'), from, to, T0 + 1)).toBe(false)
      expect(await store.chunks.find(hash('x'))).toEqual(liveChunk(hash('x'), 1, 3))

      expect(await store.chunks.markDamaged(copyOf(hash('x')), T0 + 2)).toBe(true)
      expect(await store.chunks.sound([hash('x')])).toEqual(new Map())
      // From a copy that is not the damaged one (a concurrent repair got there first).
      expect(await store.chunks.replaceDamaged(hash('x'), newGeneration(), to, T0 + 3)).toBe(false)
      expect(await store.chunks.find(hash('x'))).toEqual({ ...liveChunk(hash('x'), 1, 3), damaged: true })

      expect(await store.chunks.replaceDamaged(hash('x'), from, to, T0 + 4)).toBe(true)
      const repaired = { ...liveChunk(hash('x'), 1, 3), generation: to }
      expect(await store.chunks.find(hash('x'))).toEqual(repaired)
      expect(await store.chunks.sound([hash('x')])).toEqual(new Map([[hash('x'), 1]]))
      expect(await store.collector.generations([hash('x')])).toEqual(new Map([[hash('x'), to]]))
      expect(await store.audit.countDamaged()).toBe(0)

      // The repair that lost the race changes nothing; nor does one of a chunk with no row.
      expect(await store.chunks.replaceDamaged(hash('x'), from, newGeneration(), T0 + 5)).toBe(false)
      expect(await store.chunks.find(hash('x'))).toEqual(repaired)
      expect(await store.chunks.replaceDamaged(hash('absent'), from, to, T0 + 5)).toBe(false)
      expect(await store.chunks.find(hash('absent'))).toBeNull()

      // The old copy is no longer the chunk's: damage found in it marks nothing. The new one's does.
      expect(await store.chunks.markDamaged({ hash: hash('x'), generation: from }, T0 + 6)).toBe(false)
      expect(await store.chunks.markDamaged({ hash: hash('x'), generation: to }, T0 + 7)).toBe(true)
      const again = newGeneration()
      expect(await store.chunks.replaceDamaged(hash('x'), to, again, T0 + 8)).toBe(true)
      expect(await store.chunks.find(hash('x'))).toEqual({ ...repaired, generation: again })
    })

    it('never repairs a claimed chunk, and counts only live damage', async () => {
      await insertChunks(store, [hash('y'), hash('kept')])
      await store.chunks.addReferences(new Map([[hash('kept'), 1]]))
      for (const seed of ['y', 'kept'])
        expect(await store.chunks.markDamaged(copyOf(hash(seed)), T0)).toBe(true)
      expect(await store.audit.countDamaged()).toBe(2)
      // Damaged garbage is garbage: the collector claims it like any other.
      expect(await store.collector.mark(T0 + 1)).toBe(1)
      expect(hashesOf(await store.collector.claim(T0 + 1, T0 + 2, 10))).toEqual([hash('y')])
      expect(
        await store.chunks.replaceDamaged(hash('y'), generationOf(hash('y')), newGeneration(), T0 + 3),
      ).toBe(false)
      expect(await store.chunks.find(hash('y'))).toEqual({ ...deleting(hash('y')), damaged: true })
      expect(await store.audit.countDamaged()).toBe(1)
    })
  })

  describe('versions', () => {
    it('finds a version and its chunks from any offset', async () => {
      const user = await insertUser(store)
      const file = await insertFile(store, user, user.rootFolderId, 'f', 10)
      const chunks = chunkList([4, 4, 2])
      const version = await insertVersion(store, file, chunks)
      expect(await store.versions.find(file.id, 1)).toEqual(version)
      expect(await store.versions.find(file.id, 2)).toBeNull()
      expect(await store.versions.chunks(version.id)).toEqual(chunks)
      const from = async (offset: number) =>
        (await store.versions.chunks(version.id, offset)).map((c) => c.index)
      expect(await from(0)).toEqual([0, 1, 2])
      expect(await from(3)).toEqual([0, 1, 2])
      expect(await from(4)).toEqual([1, 2])
      expect(await from(5)).toEqual([1, 2])
      expect(await from(9)).toEqual([2])
      expect(await from(10)).toEqual([])
    })

    it('round-trips a version of 3000 chunks', async () => {
      const user = await insertUser(store)
      const file = await insertFile(store, user, user.rootFolderId, 'big.bin')
      const chunks = chunkList(
        Array.from({ length: 3000 }, (_, i) => (i === 2999 ? 123 : 4 * 1024 * 1024)),
        'big',
      )
      const version = await insertVersion(store, file, chunks)
      expect(version.size).toBeGreaterThan(2 ** 32)
      expect(await store.versions.find(file.id, 1)).toEqual(version)
      expect(await store.versions.chunks(version.id)).toEqual(chunks)
      expect(await store.versions.chunks(version.id, version.size - 1)).toEqual([chunks[2999]])
    })

    it('reads a plan: the version, and its chunks from an offset with the copy and damage of each', async () => {
      const user = await insertUser(store)
      const file = await insertFile(store, user, user.rootFolderId, 'f', 13)
      const chunks = chunkList([4, 4, 2, 3], 'plan')
      // The third chunk gets no row at all.
      const [sound, damaged, , claimed] = chunks.map((chunk) => chunk.hash) as [
        string,
        string,
        string,
        string,
      ]
      await insertDeletingChunk(store, claimed, 3)
      await insertChunks(store, [sound], 4)
      await insertChunks(store, [damaged], 4)
      expect(await store.chunks.markDamaged(copyOf(damaged), T0)).toBe(true)
      const version = await insertVersion(store, file, chunks)
      const planned = [
        { ...chunks[0]!, generation: generationOf(sound), damaged: false },
        { ...chunks[1]!, generation: generationOf(damaged), damaged: true },
        // No live row names these (corruption, or a claimed chunk): no copy to read.
        expect.objectContaining({ ...chunks[2]!, generation: null }),
        expect.objectContaining({ ...chunks[3]!, generation: null }),
      ]
      const plan = (offset: number) => store.versions.readPlan(file.id, 1, offset)
      expect(await plan(0)).toEqual({ version, chunks: planned })
      expect(await plan(3)).toEqual({ version, chunks: planned })
      expect(await plan(4)).toEqual({ version, chunks: planned.slice(1) })
      expect(await plan(9)).toEqual({ version, chunks: planned.slice(2) })
      expect(await plan(12)).toEqual({ version, chunks: planned.slice(3) })
      expect(await plan(13)).toEqual({ version, chunks: [] })
      // Up to the chunk that holds the range's last byte, no further.
      const upTo = (from: number, to: number) => store.versions.readPlan(file.id, 1, from, to)
      expect(await upTo(0, 3)).toEqual({ version, chunks: planned.slice(0, 1) })
      expect(await upTo(0, 4)).toEqual({ version, chunks: planned.slice(0, 2) })
      expect(await upTo(4, 9)).toEqual({ version, chunks: planned.slice(1, 3) })
      expect(await upTo(12, 12)).toEqual({ version, chunks: planned.slice(3) })
      expect(await store.versions.readPlan(file.id, 2, 0)).toBeNull()
      expect(await store.versions.readPlan(newId(), 1, 0)).toBeNull()
    })

    it('reads the plan of an empty file, of a chunk named twice, and none of a deleted version', async () => {
      const user = await insertUser(store)
      const empty = await insertFile(store, user, user.rootFolderId, 'empty')
      const nothing = await insertVersion(store, empty, [])
      expect(await store.versions.readPlan(empty.id, 1, 0)).toEqual({ version: nothing, chunks: [] })

      const twice = await insertFile(store, user, user.rootFolderId, 'twice', 2)
      await insertChunks(store, [hash('x')])
      const refs = refsTo([hash('x'), hash('x')])
      const version = await insertVersion(store, twice, refs)
      const planned = refs.map((ref) => ({ ...ref, generation: generationOf(hash('x')), damaged: false }))
      expect(await store.versions.readPlan(twice.id, 1, 0)).toEqual({ version, chunks: planned })
      expect(await store.versions.readPlan(twice.id, 1, 1)).toEqual({ version, chunks: planned.slice(1) })

      await store.versions.delete([version.id])
      expect(await store.versions.readPlan(twice.id, 1, 0)).toBeNull()
    })
  })

  describe('chunk lifecycle', () => {
    it('answers only live rows as sound, and never re-creates a row the collector claimed', async () => {
      await insertDeletingChunk(store, hash('going'))
      await insertChunks(store, [hash('live')])
      expect(await store.chunks.sound([hash('live'), hash('going'), hash('absent')])).toEqual(
        new Map([[hash('live'), 1]]),
      )
      expect(await store.chunks.find(hash('going'))).toEqual(deleting(hash('going')))
      // A chunk PUT of claimed bytes finds the row: its copy is not recorded, not even as live.
      expect(
        await store.chunks.insert({ hash: hash('going'), size: 1, generation: newGeneration() }, T0 + 1),
      ).toBe(false)
      expect(await store.chunks.find(hash('going'))).toEqual(deleting(hash('going')))
    })

    it('clears the collector mark on a new reference, so the chunk waits a full grace period again', async () => {
      await insertChunks(store, [hash('a')])
      expect(await store.collector.mark(T0)).toBe(1)
      await store.chunks.addReferences(new Map([[hash('a'), 2]]))
      expect(await store.chunks.find(hash('a'))).toEqual(liveChunk(hash('a'), 1, 2))
      await store.chunks.dropReferences(new Map([[hash('a'), 2]]))
      // Garbage again, but its old mark is gone: nothing to claim on it.
      expect(await store.collector.claimable(T0 + 1000, 10)).toEqual([])
      expect(await store.collector.claim(T0 + 1000, T0 + 1000, 10)).toEqual([])
      expect(await store.collector.countUnmarked()).toBe(1)
      expect(await store.collector.mark(T0 + 500)).toBe(1)
      expect(await store.collector.claim(T0 + 499, T0 + 1000, 10)).toEqual([])
      expect(hashesOf(await store.collector.claim(T0 + 500, T0 + 1000, 10))).toEqual([hash('a')])
    })

    it('refuses to reference a missing or claimed chunk (CHUNKS_MISSING), changing nothing', async () => {
      await insertDeletingChunk(store, hash('going'))
      await insertChunks(store, [hash('a'), hash('b')])
      expect(await store.collector.mark(T0)).toBe(2)
      const user = await insertUser(store)
      for (const bad of [hash('absent'), hash('going')]) {
        const counts = new Map([
          [hash('a'), 1],
          [bad, 1],
          [hash('b'), 3],
        ])
        let folderId = ''
        await rejectsWithCode(
          store.transaction(async (tx) => {
            folderId = (await insertFolder(tx, user, user.rootFolderId, `written before ${bad}`)).id
            await tx.chunks.addReferences(counts)
          }),
          'CHUNKS_MISSING',
        )
        expect(await store.nodes.findAnyState(folderId)).toBeNull()
        // On its own, outside a transaction, it is all or nothing as well.
        await rejectsWithCode(store.chunks.addReferences(counts), 'CHUNKS_MISSING')
      }
      expect(await store.chunks.find(hash('a'))).toEqual(liveChunk(hash('a')))
      expect(await store.chunks.find(hash('b'))).toEqual(liveChunk(hash('b')))
      expect(await store.chunks.find(hash('going'))).toEqual(deleting(hash('going')))
      expect(await store.chunks.find(hash('absent'))).toBeNull()
      // The marks were not cleared either.
      expect(hashesOf(await store.collector.claimable(T0, 10))).toEqual(sorted([hash('a'), hash('b')]))
    })

    it('drops references by the given amounts, and only from the named chunks', async () => {
      await insertChunks(store, [hash('a'), hash('b'), hash('c')], 7)
      await store.chunks.addReferences(
        new Map([
          [hash('a'), 3],
          [hash('b'), 2],
          [hash('c'), 1],
        ]),
      )
      await store.chunks.dropReferences(
        new Map([
          [hash('a'), 2],
          [hash('b'), 2],
        ]),
      )
      await store.chunks.dropReferences(new Map())
      expect(await store.chunks.find(hash('a'))).toEqual(liveChunk(hash('a'), 7, 1))
      expect(await store.chunks.find(hash('b'))).toEqual(liveChunk(hash('b'), 7, 0))
      expect(await store.chunks.find(hash('c'))).toEqual(liveChunk(hash('c'), 7, 1))
    })

    it('takes the chunk guard inside transactions, in both modes, and releases it at the end', async () => {
      const user = await insertUser(store)
      await insertChunks(store, [hash('a'), hash('b')])
      await store.collector.mark(T0)
      // A guard held past its transaction would make the next transaction (another
      // connection of the pool) wait for ever.
      await store.transaction(async (tx) => {
        await tx.chunks.guard('use')
        await insertUploadNaming(tx, user, [hash('a')])
      })
      const claimed = await store.transaction(async (tx) => {
        await tx.chunks.guard('collect')
        return tx.collector.claim(T0, T0 + 1, 10)
      })
      expect(hashesOf(claimed)).toEqual([hash('b')])
      await store.transaction(async (tx) => {
        await tx.chunks.guard('use')
        await tx.chunks.guard('use')
      })
      await store.transaction((tx) => tx.chunks.guard('collect'))
      expect((await store.chunks.find(hash('a')))?.state).toBe('live')
    })
  })

  describe('collector', () => {
    it('marks only live, unreferenced, unmarked chunks, and answers how many', async () => {
      await insertDeletingChunk(store, hash('going'))
      await insertChunks(store, [hash('a'), hash('b')])
      expect(await store.collector.countUnmarked()).toBe(2)
      expect(await store.collector.mark(T0)).toBe(2)
      expect(await store.collector.countUnmarked()).toBe(0)

      await insertChunks(store, [hash('c'), hash('referenced')])
      await store.chunks.addReferences(new Map([[hash('referenced'), 1]]))
      expect(await store.collector.countUnmarked()).toBe(1)
      expect(await store.collector.mark(T0 + 10)).toBe(1)
      expect(await store.collector.mark(T0 + 20)).toBe(0)
      expect(await store.collector.countUnmarked()).toBe(0)

      // `a` and `b` kept their first mark; `c` got the second; the others none.
      expect(hashesOf(await store.collector.claimable(T0 + 9, 10))).toEqual(sorted([hash('a'), hash('b')]))
      expect(hashesOf(await store.collector.claimable(T0 + 20, 10))).toEqual(
        sorted([hash('a'), hash('b'), hash('c')]),
      )
    })

    it('claims only chunks marked at or before the cutoff, once, and turns them deleting', async () => {
      await insertChunks(store, [hash('a'), hash('b')], 5)
      await store.collector.mark(T0)
      await insertChunks(store, [hash('c')], 5)
      await store.collector.mark(T0 + 10)

      const claimed = await store.collector.claim(T0 + 9, T0 + 30, 10)
      // Each with the copy it claims: the one the collector then deletes, by its generation.
      expect([...claimed].sort((x, y) => binaryCompare(x.hash, y.hash))).toEqual(
        [deleting(hash('a'), 5), deleting(hash('b'), 5)].sort((x, y) => binaryCompare(x.hash, y.hash)),
      )
      expect(await store.chunks.find(hash('a'))).toEqual(deleting(hash('a'), 5))
      expect((await store.chunks.find(hash('c')))?.state).toBe('live')
      // Claimed rows are not claimed again.
      expect(await store.collector.claim(T0 + 9, T0 + 31, 10)).toEqual([])
      expect(hashesOf(await store.collector.claim(T0 + 10, T0 + 32, 10))).toEqual([hash('c')])
    })

    it('never claims a chunk that an upload session names', async () => {
      const user = await insertUser(store)
      await insertChunks(store, [hash('named'), hash('free')])
      const session = await insertUploadNaming(store, user, [hash('other'), hash('named')])
      await store.collector.mark(T0)
      expect(hashesOf(await store.collector.claimable(T0, 10))).toEqual([hash('free')])
      expect(hashesOf(await store.collector.claim(T0, T0 + 1, 10))).toEqual([hash('free')])
      expect((await store.chunks.find(hash('named')))?.state).toBe('live')
      await store.uploads.delete(session.id)
      expect(hashesOf(await store.collector.claim(T0, T0 + 2, 10))).toEqual([hash('named')])
    })

    it('does not claim a chunk referenced again after it was marked (resurrected)', async () => {
      await insertChunks(store, [hash('dedup'), hash('garbage')])
      await store.collector.mark(T0)
      // A dedup hit between the mark and the sweep.
      await store.chunks.addReferences(new Map([[hash('dedup'), 1]]))
      expect(hashesOf(await store.collector.claim(T0, T0 + 1, 10))).toEqual([hash('garbage')])
      expect(await store.chunks.find(hash('dedup'))).toEqual(liveChunk(hash('dedup'), 1, 1))
    })

    it('claims at most `limit` chunks, the earliest marked first', async () => {
      const order = [3, 0, 4, 1, 2].map((i) => hash(`c${i}`))
      for (const [i, chunkHash] of order.entries()) {
        await insertChunks(store, [chunkHash])
        await store.collector.mark(T0 + i)
      }
      expect(hashesOf(await store.collector.claim(T0 + 100, T0 + 200, 2))).toEqual(sorted(order.slice(0, 2)))
      expect(hashesOf(await store.collector.claim(T0 + 100, T0 + 200, 2))).toEqual(sorted(order.slice(2, 4)))
      expect(hashesOf(await store.collector.claim(T0 + 100, T0 + 200, 2))).toEqual(sorted(order.slice(4)))
      expect(await store.collector.claim(T0 + 100, T0 + 200, 2)).toEqual([])
    })

    it('answers in claimable what claim would take, without taking it', async () => {
      const user = await insertUser(store)
      await insertDeletingChunk(store, hash('going'))
      await insertChunks(store, [hash('old1'), hash('old2'), hash('named'), hash('dedup')])
      await store.collector.mark(T0)
      await insertChunks(store, [hash('old3')])
      await store.collector.mark(T0 + 1)
      await insertChunks(store, [hash('young')])
      await store.collector.mark(T0 + 50)
      await insertUploadNaming(store, user, [hash('named')])
      await store.chunks.addReferences(new Map([[hash('dedup'), 1]]))

      const cutoff = T0 + 10
      const expected = sorted([hash('old1'), hash('old2'), hash('old3')])
      expect(hashesOf(await store.collector.claimable(cutoff, 10))).toEqual(expected)
      expect(hashesOf(await store.collector.claimable(cutoff, 2))).toEqual(
        sorted([hash('old1'), hash('old2')]),
      )
      for (const chunk of await store.collector.claimable(cutoff, 10)) {
        expect(chunk).toEqual(liveChunk(chunk.hash))
        expect((await store.chunks.find(chunk.hash))?.state).toBe('live')
      }
      expect(hashesOf(await store.collector.claimable(cutoff, 10))).toEqual(expected)
      expect(hashesOf(await store.collector.claim(cutoff, T0 + 100, 10))).toEqual(expected)
    })

    it('takes over only claims made at or before the cutoff, and re-stamps them', async () => {
      await insertChunks(store, [hash('a')])
      await store.collector.mark(T0)
      await store.collector.claim(T0, T0 + 10, 10)
      await insertChunks(store, [hash('b')])
      await store.collector.mark(T0 + 11)
      await store.collector.claim(T0 + 11, T0 + 20, 10)
      await insertDeletingChunk(store, hash('orphan'), 1, T0 + 5)
      // Live chunks, marked or not, are never taken over.
      await insertChunks(store, [hash('marked'), hash('unmarked')])
      await store.collector.mark(T0)
      await store.chunks.addReferences(new Map([[hash('unmarked'), 1]]))
      await store.chunks.dropReferences(new Map([[hash('unmarked'), 1]]))

      expect(hashesOf(await store.collector.takeOverStale(T0 + 4, T0 + 100, 10))).toEqual([])
      const taken = await store.collector.takeOverStale(T0 + 15, T0 + 100, 10)
      expect([...taken].sort((x, y) => binaryCompare(x.hash, y.hash))).toEqual(
        [deleting(hash('a')), deleting(hash('orphan'))].sort((x, y) => binaryCompare(x.hash, y.hash)),
      )
      // Re-stamped with `now`: a second collector with the same cutoff finds nothing.
      expect(await store.collector.takeOverStale(T0 + 15, T0 + 101, 10)).toEqual([])
      expect(hashesOf(await store.collector.takeOverStale(T0 + 99, T0 + 102, 10))).toEqual([hash('b')])
      expect(await store.collector.takeOverStale(T0 + 101, T0 + 103, 1)).toHaveLength(1)
      expect((await store.chunks.find(hash('marked')))?.state).toBe('live')
      expect((await store.chunks.find(hash('unmarked')))?.state).toBe('live')
    })

    it('forgets a deleting row only while it names that copy', async () => {
      await insertDeletingChunk(store, hash('going'))
      await insertDeletingChunk(store, hash('gone'))
      await insertChunks(store, [hash('live')])
      const going = copyOf(hash('going'))
      // Another copy of the chunk is not the claimed one: the row stays.
      await store.collector.forget([
        { hash: hash('going'), generation: newGeneration() },
        { hash: hash('going'), generation: LEGACY_GENERATION },
      ])
      expect(await store.chunks.find(hash('going'))).toEqual(deleting(hash('going')))
      // Live rows are never forgotten, whichever copy is named; rows that are not there are no error.
      await store.collector.forget([
        going,
        copyOf(hash('gone')),
        copyOf(hash('live')),
        { hash: hash('absent'), generation: newGeneration() },
      ])
      await store.collector.forget([])
      expect(await store.chunks.find(hash('going'))).toBeNull()
      expect(await store.chunks.find(hash('gone'))).toBeNull()
      expect(await store.chunks.find(hash('live'))).toEqual(liveChunk(hash('live')))

      // Uploaded again meanwhile under a new generation: the late forget of a collector that
      // paused after deleting the old copy leaves the new row alone, live or claimed in turn.
      const again = newGeneration()
      expect(await store.chunks.insert({ hash: hash('going'), size: 1, generation: again }, T0 + 10)).toBe(
        true,
      )
      await store.collector.forget([going])
      expect(await store.chunks.find(hash('going'))).toEqual({
        ...liveChunk(hash('going')),
        generation: again,
      })
      expect(await store.collector.mark(T0 + 20)).toBe(2)
      expect(hashesOf(await store.collector.claim(T0 + 20, T0 + 30, 10))).toEqual(
        sorted([hash('going'), hash('live')]),
      )
      await store.collector.forget([going])
      expect(await store.chunks.find(hash('going'))).toEqual(deleting(hash('going'), 1, again))
      await store.collector.forget([{ hash: hash('going'), generation: again }])
      expect(await store.chunks.find(hash('going'))).toBeNull()
    })

    it('answers the generation each row names, in any state', async () => {
      await insertDeletingChunk(store, hash('going'))
      await insertChunks(store, [hash('live'), hash('damaged')])
      await store.chunks.markDamaged(copyOf(hash('damaged')), T0)
      await store.chunks.insert({ hash: hash('legacy'), size: 1, generation: LEGACY_GENERATION }, T0)
      const asked = [
        hash('live'),
        hash('going'),
        hash('damaged'),
        hash('legacy'),
        hash('absent'),
        hash('live'),
      ]
      expect(await store.collector.generations(asked)).toEqual(
        new Map([
          [hash('live'), generationOf(hash('live'))],
          [hash('going'), generationOf(hash('going'))],
          [hash('damaged'), generationOf(hash('damaged'))],
          [hash('legacy'), LEGACY_GENERATION],
        ]),
      )
      expect(await store.collector.generations([])).toEqual(new Map())
    })

    it('finds the orphans among copies: no row names them, and no upload session names their hash', async () => {
      const user = await insertUser(store)
      await insertDeletingChunk(store, hash('going'))
      await insertChunks(store, [hash('live'), hash('named-live')])
      const session = await insertUploadNaming(store, user, [hash('named'), hash('named-live')])
      const other = (seed: string, generation = newGeneration()) => ({ hash: hash(seed), generation })
      const orphans = [
        other('free'),
        other('free'),
        other('free', LEGACY_GENERATION),
        other('live'),
        other('live', LEGACY_GENERATION),
        other('going'),
      ]
      const kept = [
        copyOf(hash('live')),
        // A claimed row still names its copy: the collector deletes it as a claim, not an orphan.
        copyOf(hash('going')),
        // An upload in flight may record any copy of a hash its session names.
        other('named'),
        other('named', LEGACY_GENERATION),
        other('named-live'),
        copyOf(hash('named-live')),
      ]
      const found = await store.transaction(async (tx) => {
        await tx.chunks.guard('collect')
        return tx.collector.orphans([...kept, ...orphans].reverse())
      })
      expect([...found].sort(byCopy)).toEqual([...orphans].sort(byCopy))
      expect(await store.collector.orphans([])).toEqual([])
      expect(await store.collector.orphans(kept)).toEqual([])

      // It only answers: no row is inserted or claimed.
      expect(await store.chunks.find(hash('free'))).toBeNull()
      expect(await store.chunks.find(hash('named'))).toBeNull()
      expect(await store.chunks.find(hash('live'))).toEqual(liveChunk(hash('live')))
      expect(await store.chunks.find(hash('going'))).toEqual(deleting(hash('going')))

      // Once the session is gone, the copies it protected are orphans, but for the row's own.
      await store.uploads.delete(session.id)
      const unprotected = [other('named'), other('named', LEGACY_GENERATION), other('named-live')]
      expect(
        [...(await store.collector.orphans([...unprotected, copyOf(hash('named-live'))]))].sort(byCopy),
      ).toEqual([...unprotected].sort(byCopy))
    })
  })

  describe('audit', () => {
    it('answers live chunks least recently verified first (then by hash), and records verification', async () => {
      const hashes = sorted([1, 2, 3, 4].map((i) => hash(`v${i}`)))
      await insertDeletingChunk(store, hash('going'))
      await insertChunks(store, hashes)
      expect(hashesOf(await store.audit.leastRecentlyVerified(10))).toEqual(hashes)
      const inOrder = async (limit: number) =>
        (await store.audit.leastRecentlyVerified(limit)).map((c) => c.hash)
      expect(await inOrder(10)).toEqual(hashes)
      await store.audit.markVerified([hashes[0]!, hashes[1]!, hash('going')], T0 + 10)
      await store.audit.markVerified([hashes[3]!], T0 + 5)
      await store.audit.markVerified([], T0 + 99)
      expect(await inOrder(10)).toEqual([hashes[2], hashes[3], hashes[0], hashes[1]])
      expect(await inOrder(2)).toEqual([hashes[2], hashes[3]])
      expect((await store.audit.leastRecentlyVerified(1))[0]).toEqual(liveChunk(hashes[2]!))
    })

    it('pages through live chunks in hash order, and counts them', async () => {
      const hashes = Array.from({ length: 25 }, (_, i) => hash(`live${i}`))
      await insertDeletingChunk(store, hash('going1'))
      await insertDeletingChunk(store, hash('going2'))
      await insertChunks(store, hashes, 9)
      // A damaged chunk is still live: scrub reads it again, and it counts.
      await store.chunks.markDamaged(copyOf(hashes[7]!), T0)
      const listed: ChunkRecord[] = []
      let page = await store.audit.liveChunks(null, 10)
      while (page.length > 0) {
        expect(page.length).toBeLessThanOrEqual(10)
        listed.push(...page)
        page = await store.audit.liveChunks(page.at(-1)!.hash, 10)
      }
      expect(listed).toEqual(
        [...hashes].sort(binaryCompare).map((h) => ({ ...liveChunk(h, 9), damaged: h === hashes[7] })),
      )
      expect(await store.audit.countLive()).toBe(25)
    })

    it('counts the live chunks marked damaged and not repaired', async () => {
      await insertChunks(store, [hash('a'), hash('b'), hash('c')])
      expect(await store.audit.countDamaged()).toBe(0)
      for (const seed of ['a', 'b']) await store.chunks.markDamaged(copyOf(hash(seed)), T0)
      expect(await store.audit.countDamaged()).toBe(2)
      await store.chunks.replaceDamaged(hash('a'), generationOf(hash('a')), newGeneration(), T0 + 1)
      expect(await store.audit.countDamaged()).toBe(1)
    })

    it('finds reference counts that differ from the version entries, and none when they agree', async () => {
      const user = await insertUser(store)
      const f1 = await insertFile(store, user, user.rootFolderId, 'f1')
      const f2 = await insertFile(store, user, user.rootFolderId, 'f2')
      await insertChunks(store, [hash('x'), hash('y'), hash('z')])
      await insertVersion(store, f1, refsTo([hash('x'), hash('x'), hash('y')]))
      await insertVersion(store, f2, refsTo([hash('y')]))
      await store.chunks.addReferences(
        new Map([
          [hash('x'), 2],
          [hash('y'), 2],
        ]),
      )
      expect(await store.audit.refCountMismatches()).toEqual([])
      // A count dropped without deleting its entries, and one added without any entry.
      await store.chunks.dropReferences(new Map([[hash('x'), 1]]))
      await store.chunks.addReferences(new Map([[hash('z'), 1]]))
      const expected = [
        { hash: hash('x'), refCount: 1, actual: 2 },
        { hash: hash('z'), refCount: 1, actual: 0 },
      ].sort((a, b) => binaryCompare(a.hash, b.hash))
      expect(await store.audit.refCountMismatches()).toEqual(expected)
    })

    it('finds version entries whose chunk row is missing or deleting', async () => {
      const user = await insertUser(store)
      const file = await insertFile(store, user, user.rootFolderId, 'f')
      await insertDeletingChunk(store, hash('going'))
      await insertChunks(store, [hash('live')])
      expect(await store.audit.danglingReferences()).toEqual([])
      await insertVersion(store, file, refsTo([hash('live'), hash('absent'), hash('going'), hash('absent')]))
      expect(await store.audit.danglingReferences()).toEqual(sorted([hash('absent'), hash('going')]))
    })

    it('finds versions whose sizes disagree with their chunks, and none when they agree', async () => {
      const user = await insertUser(store)
      const [good, empty, rowless, wrongChunk, wrongTotal] = await Promise.all(
        ['good', 'empty', 'rowless', 'wrong-chunk', 'wrong-total'].map((name) =>
          insertFile(store, user, user.rootFolderId, name),
        ),
      )
      await insertChunks(store, [hash('four')], 4)
      await insertChunks(store, [hash('two')], 2)
      const four = { index: 0, hash: hash('four'), size: 4, offset: 0 }
      const two = { index: 1, hash: hash('two'), size: 2, offset: 4 }
      await insertVersion(store, good!, [four, two])
      await insertVersion(
        store,
        good!,
        [two].map((c) => ({ ...c, index: 0, offset: 0 })),
        { version: 2 },
      )
      await insertVersion(store, empty!, [])
      // A chunk with no row at all is a dangling reference, not a size mismatch.
      await insertVersion(store, rowless!, [four, { ...two, hash: hash('absent'), size: 9 }])
      expect(await store.audit.sizeMismatches()).toEqual([])

      // A chunk declared with another size than its bytes have (the version adds up, though).
      await insertVersion(store, wrongChunk!, [four, { ...two, size: 3 }])
      // Chunks that do not add up to the version's size, with or without chunks.
      await insertVersion(store, wrongTotal!, [four], { size: 5 })
      await insertVersion(store, empty!, [], { version: 2, size: 1 })
      const found = await store.audit.sizeMismatches()
      const key = (m: { nodeId: string; version: number }) => `${m.nodeId} v${m.version}`
      expect(found.map(key).sort()).toEqual(
        [
          { nodeId: wrongChunk!.id, version: 1 },
          { nodeId: wrongTotal!.id, version: 1 },
          { nodeId: empty!.id, version: 2 },
        ]
          .map(key)
          .sort(),
      )
      for (const mismatch of found) expect(mismatch.problem).toEqual(expect.stringMatching(/\S/))
    })
  })

  describe('version history', () => {
    it('lists the versions of a file newest first, and the ids of the versions of files', async () => {
      const user = await insertUser(store)
      const file = await insertFile(store, user, user.rootFolderId, 'f')
      const other = await insertFile(store, user, user.rootFolderId, 'g')
      const v1 = await insertVersion(store, file, chunkList([1]), { version: 1, createdAt: T0 })
      const v3 = await insertVersion(store, file, chunkList([3]), { version: 3, createdAt: T0 + 3 })
      const v2 = await insertVersion(store, file, chunkList([2]), { version: 2, createdAt: T0 + 2 })
      const w1 = await insertVersion(store, other, chunkList([1]))
      expect(await store.versions.list(file.id)).toEqual([v3, v2, v1])
      expect(await store.versions.list(newId())).toEqual([])
      expect(sorted(await store.versions.idsOf([file.id]))).toEqual(sorted([v1.id, v2.id, v3.id]))
      expect(sorted(await store.versions.idsOf([file.id, other.id, newId()]))).toEqual(
        sorted([v1.id, v2.id, v3.id, w1.id]),
      )
      expect(await store.versions.idsOf([])).toEqual([])
    })

    it('deletes versions with their chunk lists and answers the exact entries each chunk lost', async () => {
      const user = await insertUser(store)
      const a = await insertFile(store, user, user.rootFolderId, 'a')
      const b = await insertFile(store, user, user.rootFolderId, 'b')
      const [x, y, z, w] = [hash('x'), hash('y'), hash('z'), hash('w')]
      await insertChunks(store, [x, y, z, w])
      const a1 = await insertVersion(store, a, refsTo([x, x, y]), { version: 1 })
      const a2 = await insertVersion(store, a, refsTo([x, z]), { version: 2 })
      const b1 = await insertVersion(store, b, refsTo([y, w]))
      await store.chunks.addReferences(
        new Map([
          [x, 3],
          [y, 2],
          [z, 1],
          [w, 1],
        ]),
      )

      const dropped = await store.versions.delete([a1.id, a2.id])
      expect(dropped).toEqual(
        new Map([
          [x, 3],
          [y, 1],
          [z, 1],
        ]),
      )
      expect(await store.versions.list(a.id)).toEqual([])
      expect(await store.versions.chunks(a1.id)).toEqual([])
      expect(await store.versions.chunks(a2.id)).toEqual([])
      expect(await store.versions.list(b.id)).toEqual([b1])
      expect(await store.versions.chunks(b1.id)).toEqual(refsTo([y, w]))
      // What the caller does with the answer, in the same transaction: the counts add up.
      await store.chunks.dropReferences(dropped)
      expect(await store.audit.refCountMismatches()).toEqual([])
      expect((await store.chunks.find(x))?.refCount).toBe(0)
      expect((await store.chunks.find(y))?.refCount).toBe(1)
      expect(await store.versions.delete([])).toEqual(new Map())
    })
  })

  describe('trash', () => {
    /**
     * root/
     *   f1 (5 B)                      trashed at T0+1
     *   A/ {10 B, 20 B, sub/{30 B}}   trashed at T0+3, after A/early (40 B) at T0+2
     *   E/ (empty)                    trashed at T0+3
     *   f4 (7 B)                      trashed at T0+4
     *   live (3 B)
     * and another user's file, trashed at T0+5.
     */
    async function trashScene() {
      const user = await insertUser(store)
      const other = await insertUser(store)
      const root = user.rootFolderId
      const f1 = await insertFile(store, user, root, 'f1', 5)
      const a = await insertFolder(store, user, root, 'A')
      const a10 = await insertFile(store, user, a.id, 'ten', 10)
      const a20 = await insertFile(store, user, a.id, 'twenty', 20)
      const sub = await insertFolder(store, user, a.id, 'sub')
      const sub30 = await insertFile(store, user, sub.id, 'thirty', 30)
      const early = await insertFile(store, user, a.id, 'early', 40)
      const e = await insertFolder(store, user, root, 'E')
      const f4 = await insertFile(store, user, root, 'f4', 7)
      const live = await insertFile(store, user, root, 'live', 3)
      const theirs = await insertFile(store, other, other.rootFolderId, 'theirs', 100)
      await store.nodes.trashSubtree(f1.id, T0 + 1)
      await store.nodes.trashSubtree(early.id, T0 + 2)
      await store.nodes.trashSubtree(a.id, T0 + 3)
      await store.nodes.trashSubtree(e.id, T0 + 3)
      await store.nodes.trashSubtree(f4.id, T0 + 4)
      await store.nodes.trashSubtree(theirs.id, T0 + 5)
      return { user, other, f1, a, a10, a20, sub, sub30, early, e, f4, live, theirs }
    }

    it('finds a node in any state by id (findAnyState)', async () => {
      const { a, a10, live, theirs } = await trashScene()
      expect(await store.nodes.findAnyState(live.id)).toEqual(live)
      expect(await store.nodes.findAnyState(a10.id)).toMatchObject({
        ...a10,
        deletedAt: T0 + 3,
        trashRootId: a.id,
      })
      expect(await store.nodes.findAnyState(theirs.id)).toMatchObject({
        id: theirs.id,
        trashRootId: theirs.id,
      })
      expect(await store.nodes.findAnyState(newId())).toBeNull()
    })

    it("finds only the owner's trash roots (findTrashRoot)", async () => {
      const { user, other, a, a10, sub, early, live, theirs } = await trashScene()
      expect(await store.nodes.findTrashRoot(user.id, a.id)).toEqual({
        ...a,
        deletedAt: T0 + 3,
        trashRootId: a.id,
        listingVersion: expect.any(Number),
      })
      expect(await store.nodes.findTrashRoot(user.id, early.id)).toMatchObject({ deletedAt: T0 + 2 })
      // Went with a root, live, another owner's, unknown: none is a trash root of this user.
      expect(await store.nodes.findTrashRoot(user.id, a10.id)).toBeNull()
      expect(await store.nodes.findTrashRoot(user.id, sub.id)).toBeNull()
      expect(await store.nodes.findTrashRoot(user.id, live.id)).toBeNull()
      expect(await store.nodes.findTrashRoot(user.id, theirs.id)).toBeNull()
      expect(await store.nodes.findTrashRoot(other.id, a.id)).toBeNull()
      expect(await store.nodes.findTrashRoot(other.id, theirs.id)).toMatchObject({ id: theirs.id })
      expect(await store.nodes.findTrashRoot(user.id, newId())).toBeNull()
    })

    it('lists trash roots newest first (ties by id), in pages, with the bytes that went with each', async () => {
      const { user, f1, a, early, e, f4 } = await trashScene()
      const [first, second] = [a, e].sort((x, y) => binaryCompare(y.id, x.id))
      const expected = [
        [f4.id, 7],
        [first!.id, first === a ? 60 : 0],
        [second!.id, second === a ? 60 : 0],
        [early.id, 40],
        [f1.id, 5],
      ]
      const all = await store.nodes.listTrash(user.id, { limit: 100 })
      expect(all.map((entry) => [entry.node.id, entry.bytes])).toEqual(expected)
      for (const entry of all) expect(entry.node).toEqual(await store.nodes.findAnyState(entry.node.id))

      const paged: string[] = []
      let page = await store.nodes.listTrash(user.id, { limit: 2 })
      while (page.length > 0) {
        expect(page.length).toBeLessThanOrEqual(2)
        paged.push(...page.map((entry) => entry.node.id))
        const last = page.at(-1)!.node
        page = await store.nodes.listTrash(user.id, {
          limit: 2,
          after: { deletedAt: last.deletedAt!, id: last.id },
        })
      }
      expect(paged).toEqual(expected.map(([id]) => id))
      expect(await store.nodes.listTrash(newId(), { limit: 10 })).toEqual([])
    })

    it('answers the trash roots of every owner deleted at or before a cutoff, oldest first', async () => {
      const { f1, a, early, e, f4, theirs } = await trashScene()
      const ids = async (cutoff: number, limit: number) =>
        (await store.nodes.trashDeletedBefore(cutoff, limit)).map((n) => n.id)
      expect(await ids(T0, 10)).toEqual([])
      expect(await ids(T0 + 2, 10)).toEqual([f1.id, early.id])
      expect(await ids(T0 + 2, 1)).toEqual([f1.id])
      const upToA = await ids(T0 + 3, 10)
      expect(upToA.slice(0, 2)).toEqual([f1.id, early.id])
      expect(sorted(upToA.slice(2))).toEqual(sorted([a.id, e.id]))
      expect((await ids(T0 + 5, 10)).slice(4)).toEqual([f4.id, theirs.id])
    })

    it('restores the whole tree that went with a root, under a new parent and name', async () => {
      const { user, a, a10, a20, sub, sub30, early } = await trashScene()
      const dest = await insertFolder(store, user, user.rootFolderId, 'dest')
      const destListing = (await store.nodes.findLive(user.id, dest.id))?.listingVersion
      await store.nodes.restoreTrash(a.id, { parentId: dest.id, name: 'A back', updatedAt: T0 + 9 })

      const restored = await store.nodes.findLive(user.id, a.id)
      expect(restored).toMatchObject({
        ...a,
        parentId: dest.id,
        name: 'A back',
        updatedAt: T0 + 9,
        deletedAt: null,
        trashRootId: null,
        listingVersion: expect.any(Number),
      })
      for (const node of [a10, a20, sub, sub30]) {
        expect(await store.nodes.findLive(user.id, node.id)).toEqual({
          ...node,
          listingVersion: expect.any(Number),
        })
      }
      expect((await store.nodes.findLiveChild(dest.id, 'A back'))?.id).toBe(a.id)
      expect((await store.nodes.findLive(user.id, dest.id))?.listingVersion).not.toBe(destListing)
      // Deleted earlier on its own: still in the trash, as its own item.
      expect(await store.nodes.findLive(user.id, early.id)).toBeNull()
      expect(await store.nodes.findTrashRoot(user.id, early.id)).not.toBeNull()
      expect(
        (await store.nodes.listTrash(user.id, { limit: 10 })).map((entry) => entry.node.id),
      ).not.toContain(a.id)
    })

    it('refuses a restore onto a live name (NAME_TAKEN) and leaves the transaction usable', async () => {
      const { user, a, a10 } = await trashScene()
      const squatter = await insertFolder(store, user, user.rootFolderId, 'A')
      const restored = await store.transaction(async (tx) => {
        await rejectsWithCode(
          tx.nodes.restoreTrash(a.id, { parentId: user.rootFolderId, name: 'A', updatedAt: T0 + 9 }),
          'NAME_TAKEN',
        )
        // Nothing came back.
        expect(await tx.nodes.findTrashRoot(user.id, a.id)).not.toBeNull()
        expect(await tx.nodes.findLive(user.id, a10.id)).toBeNull()
        await tx.nodes.restoreTrash(a.id, {
          parentId: user.rootFolderId,
          name: 'A (restored)',
          updatedAt: T0 + 9,
        })
        return tx.nodes.findLive(user.id, a.id)
      })
      expect(restored).toMatchObject({ id: a.id, name: 'A (restored)', parentId: user.rootFolderId })
      expect(await store.nodes.findLive(user.id, a10.id)).toMatchObject({ id: a10.id, deletedAt: null })
      expect((await store.nodes.findLiveChild(user.rootFolderId, 'A'))?.id).toBe(squatter.id)
      // Outside a transaction too, and the item stays in the trash.
      const { user: second, f4 } = await trashScene()
      await insertFile(store, second, second.rootFolderId, 'f4')
      await rejectsWithCode(
        store.nodes.restoreTrash(f4.id, { parentId: second.rootFolderId, name: 'f4', updatedAt: T0 + 9 }),
        'NAME_TAKEN',
      )
      expect(await store.nodes.findTrashRoot(second.id, f4.id)).toMatchObject({ deletedAt: T0 + 4 })
    })

    it('answers a subtree deepest first, with nodes trashed earlier inside it, and deletes it', async () => {
      const { user, f1, a, a10, a20, sub, sub30, early, live } = await trashScene()
      const subtree = await store.nodes.subtree(a.id)
      expect(sorted(subtree.map((n) => n.id))).toEqual(
        sorted([a, a10, a20, sub, sub30, early].map((n) => n.id)),
      )
      // Every node comes before its parent.
      const position = new Map(subtree.map((n, i) => [n.id, i]))
      for (const node of subtree) {
        if (node.id !== a.id) expect(position.get(node.id)!).toBeLessThan(position.get(node.parentId!)!)
      }
      expect(subtree.find((n) => n.id === early.id)).toMatchObject({
        deletedAt: T0 + 2,
        trashRootId: early.id,
      })
      expect(await store.nodes.subtree(newId())).toEqual([])

      await store.nodes.deleteMany(subtree.map((n) => n.id))
      await store.nodes.deleteMany([])
      for (const node of subtree) expect(await store.nodes.findAnyState(node.id)).toBeNull()
      expect(await store.nodes.findLive(user.id, live.id)).toEqual(live)
      expect(await store.nodes.findAnyState(f1.id)).toMatchObject({ id: f1.id, deletedAt: T0 + 1 })
      expect(
        (await store.nodes.listTrash(user.id, { limit: 10 })).map((entry) => entry.node.id),
      ).not.toContain(early.id)
    })
  })

  describe('uploads', () => {
    const upload = uploadRecord
    const uploadChunks = (): UploadChunkRecord[] => [
      { index: 0, hash: hash('x'), size: 4, offset: 0, state: 'needed' },
      { index: 1, hash: hash('y'), size: 4, offset: 4, state: 'prove' },
      { index: 2, hash: hash('x'), size: 2, offset: 8, state: 'ok' },
    ]

    it('finds a session only for its user and before it expires', async () => {
      const user = await insertUser(store)
      const other = await insertUser(store)
      const session = upload(user.id, user.rootFolderId, { baseVersion: 3 })
      await store.uploads.insert(session, uploadChunks())
      expect(await store.uploads.find(user.id, session.id, T0 + 999)).toEqual(session)
      expect(await store.uploads.find(other.id, session.id, T0)).toBeNull()
      expect(await store.uploads.find(user.id, session.id, T0 + 1000)).toBeNull()
      expect(await store.uploads.find(user.id, newId(), T0)).toBeNull()
      expect(await store.uploads.chunks(session.id)).toEqual(uploadChunks())
      const all = uploadChunks()
      expect(await store.uploads.chunk(session.id, 1)).toEqual(all[1])
      expect(await store.uploads.chunk(session.id, all.length)).toBeNull()
      expect(await store.uploads.chunk(newId(), 0)).toBeNull()
    })

    it('sets chunk states by hash, every chunk of each hash', async () => {
      const user = await insertUser(store)
      const session = upload(user.id, user.rootFolderId)
      await store.uploads.insert(session, uploadChunks())
      const states = async () => (await store.uploads.chunks(session.id)).map((c) => c.state)
      await store.uploads.setStateByHash(session.id, [hash('x')], 'prove')
      expect(await states()).toEqual(['prove', 'prove', 'prove'])
      await store.uploads.setStateByHash(session.id, [hash('y'), hash('absent')], 'ok')
      await store.uploads.setStateByHash(session.id, [], 'needed')
      expect(await states()).toEqual(['prove', 'ok', 'prove'])
      await store.uploads.setStateByHash(session.id, [hash('x'), hash('y')], 'needed')
      expect(await states()).toEqual(['needed', 'needed', 'needed'])
    })

    it('deletes a session with its chunk list', async () => {
      const user = await insertUser(store)
      const session = upload(user.id, user.rootFolderId)
      await store.uploads.insert(session, uploadChunks())
      expect(await store.uploads.delete(session.id)).toBe(true)
      expect(await store.uploads.find(user.id, session.id, T0)).toBeNull()
      expect(await store.uploads.chunks(session.id)).toEqual([])
      expect(await store.uploads.delete(session.id)).toBe(false)
    })

    it('deletes expired sessions with their chunk lists and counts them', async () => {
      const user = await insertUser(store)
      const expired = upload(user.id, user.rootFolderId, { expiresAt: T0 + 10 })
      const live = upload(user.id, user.rootFolderId, { expiresAt: T0 + 11 })
      await store.uploads.insert(expired, uploadChunks())
      await store.uploads.insert(live, uploadChunks())
      expect(await store.uploads.deleteExpired(T0 + 10)).toBe(1)
      expect(await store.uploads.chunks(expired.id)).toEqual([])
      expect(await store.uploads.find(user.id, live.id, T0 + 10)).toEqual(live)
      expect(await store.uploads.chunks(live.id)).toHaveLength(3)
    })

    it('inserts a session of thousands of chunks', async () => {
      const user = await insertUser(store)
      const chunks = chunkList(Array.from({ length: 2600 }, () => 4)).map((c) => ({
        ...c,
        state: 'needed' as const,
      }))
      const session = upload(user.id, user.rootFolderId, {
        totalChunks: chunks.length,
        size: 4 * chunks.length,
      })
      await store.uploads.insert(session, chunks)
      expect(await store.uploads.chunks(session.id)).toEqual(chunks)
      await store.uploads.setStateByHash(
        session.id,
        chunks.map((c) => c.hash),
        'ok',
      )
      expect((await store.uploads.chunks(session.id)).every((c) => c.state === 'ok')).toBe(true)
    })

    /** An inserted session of `user` with the chunk list of uploadChunks (expiring at T0 + 1000). */
    const insertSession = async (
      user: User,
      overrides: Partial<UploadRecord> = {},
    ): Promise<UploadRecord> => {
      const session = upload(user.id, user.rootFolderId, overrides)
      await store.uploads.insert(session, uploadChunks())
      return session
    }
    /** What a complete made: a file of its own, so that answers can be told apart. */
    const made = (conflict = false): UploadCompletion => ({
      fileId: newId(),
      version: 3,
      contentHash: hash(`content ${newId()}`),
      conflict,
    })
    /** What `completion` answers for a session of the fixture's size (10 bytes) that made `completion`. */
    const answered = (completion: UploadCompletion) => ({ ...completion, size: 10 })
    /** `count` consecutive 4-byte chunks, their states cycling through all three. */
    const longList = (count: number): UploadChunkRecord[] =>
      chunkList(Array.from({ length: count }, () => 4)).map((chunk, index) => ({
        ...chunk,
        state: UPLOAD_CHUNK_STATES[index % UPLOAD_CHUNK_STATES.length]!,
      }))

    it('adds to a chunk list in batches: the whole list, in index order, across batches of over 500 rows', async () => {
      const user = await insertUser(store)
      const all = longList(1703)
      const session = upload(user.id, user.rootFolderId, { totalChunks: all.length, size: 4 * all.length })
      const bystander = await insertSession(user)
      // The first part with the session, as a batched declaration records it; then the rest in
      // calls of more than 500 rows each, one of them in reverse, and an empty one.
      await store.uploads.insert(session, all.slice(0, 3))
      await store.uploads.addChunks(session.id, all.slice(603).reverse())
      await store.uploads.addChunks(session.id, all.slice(3, 603))
      await store.uploads.addChunks(session.id, [])

      expect(await store.uploads.chunks(session.id)).toEqual(all)
      for (const index of [0, 3, 502, 503, 602, 603, 1102, 1702]) {
        expect(await store.uploads.chunk(session.id, index)).toEqual(all[index])
      }
      expect(await store.uploads.chunk(session.id, all.length)).toBeNull()
      expect(await store.uploads.find(user.id, session.id, T0)).toEqual(session)
      expect(await store.uploads.chunks(bystander.id)).toEqual(uploadChunks())
    })

    it('adds a chunk list whole or not at all: a batch that fails leaves none of the call behind', async () => {
      const user = await insertUser(store)
      const session = await insertSession(user)
      const more = longList(1200).slice(uploadChunks().length)
      // The last batch names an index the list holds already.
      const clashing = [...more, { ...more[0]!, index: 1 }]
      await expect(store.uploads.addChunks(session.id, clashing)).rejects.toThrow()
      expect(await store.uploads.chunks(session.id)).toEqual(uploadChunks())
      await store.uploads.addChunks(session.id, more)
      expect(await store.uploads.chunks(session.id)).toEqual([...uploadChunks(), ...more])
    })

    it("moves an open session's expiry, and answers false when there is no such open session", async () => {
      const user = await insertUser(store)
      const session = await insertSession(user)
      const bystander = await insertSession(user)

      expect(await store.uploads.setExpiry(session.id, T0 + 5000)).toBe(true)
      expect(await store.uploads.find(user.id, session.id, T0 + 4999)).toEqual({
        ...session,
        expiresAt: T0 + 5000,
      })
      expect(await store.uploads.find(user.id, session.id, T0 + 5000)).toBeNull()
      // Earlier too, and the sweep goes by the new expiry.
      expect(await store.uploads.setExpiry(session.id, T0 + 10)).toBe(true)
      expect(await store.uploads.find(user.id, session.id, T0 + 9)).toEqual({
        ...session,
        expiresAt: T0 + 10,
      })
      expect(await store.uploads.find(user.id, session.id, T0 + 10)).toBeNull()
      expect(await store.uploads.chunks(session.id)).toEqual(uploadChunks())
      expect(await store.uploads.find(user.id, bystander.id, T0 + 999)).toEqual(bystander)
      expect(await store.uploads.deleteExpired(T0 + 10)).toBe(1)
      expect(await store.uploads.find(user.id, bystander.id, T0 + 10)).toEqual(bystander)

      // Deleted, never there, completed: false, and a completed session keeps its expiry.
      expect(await store.uploads.setExpiry(session.id, T0 + 5000)).toBe(false)
      expect(await store.uploads.find(user.id, session.id, T0)).toBeNull()
      expect(await store.uploads.setExpiry(newId(), T0 + 5000)).toBe(false)
      const completion = made()
      expect(await store.uploads.markCompleted(bystander.id, completion, T0 + 1)).toBe(true)
      expect(await store.uploads.setExpiry(bystander.id, T0 + 5000)).toBe(false)
      expect(await store.uploads.completion(user.id, bystander.id, T0 + 999)).toEqual(answered(completion))
      expect(await store.uploads.completion(user.id, bystander.id, T0 + 1000)).toBeNull()
      expect(await store.uploads.find(user.id, bystander.id, T0 + 1)).toBeNull()
    })

    it('answers what a completed session made, only to its user and until it expires', async () => {
      const user = await insertUser(store)
      const other = await insertUser(store)
      const plain = await insertSession(user)
      const conflicted = await insertSession(user)
      expect(await store.uploads.completion(user.id, plain.id, T0)).toBeNull()

      const plainMade = made(false)
      const conflictedMade = made(true)
      expect(await store.uploads.markCompleted(plain.id, plainMade, T0 + 1)).toBe(true)
      expect(await store.uploads.markCompleted(conflicted.id, conflictedMade, T0 + 1)).toBe(true)
      expect(await store.uploads.completion(user.id, plain.id, T0 + 1)).toEqual(answered(plainMade))
      expect(await store.uploads.completion(user.id, plain.id, T0 + 999)).toEqual(answered(plainMade))
      expect(await store.uploads.completion(user.id, conflicted.id, T0 + 999)).toEqual(
        answered(conflictedMade),
      )
      expect(await store.uploads.completion(other.id, plain.id, T0 + 1)).toBeNull()
      expect(await store.uploads.completion(user.id, plain.id, T0 + 1000)).toBeNull()
      expect(await store.uploads.completion(user.id, newId(), T0 + 1)).toBeNull()
    })

    it('completes an open session once: true, then false, dropping its chunk list and closing it', async () => {
      const user = await insertUser(store)
      const session = await insertSession(user)
      const bystander = await insertSession(user)
      const first = made()

      expect(await store.uploads.markCompleted(session.id, first, T0 + 5)).toBe(true)
      expect(await store.uploads.find(user.id, session.id, T0 + 5)).toBeNull()
      expect(await store.uploads.chunks(session.id)).toEqual([])
      expect(await store.uploads.chunk(session.id, 0)).toBeNull()
      expect(await store.uploads.completion(user.id, session.id, T0 + 5)).toEqual(answered(first))

      // A second complete changes nothing: the first one's answer stays.
      expect(await store.uploads.markCompleted(session.id, made(true), T0 + 6)).toBe(false)
      expect(await store.uploads.completion(user.id, session.id, T0 + 6)).toEqual(answered(first))
      // Another session is left alone.
      expect(await store.uploads.find(user.id, bystander.id, T0 + 6)).toEqual(bystander)
      expect(await store.uploads.chunks(bystander.id)).toEqual(uploadChunks())
    })

    it('refuses to complete an expired, deleted or unknown session, changing nothing', async () => {
      const user = await insertUser(store)
      const expired = await insertSession(user)
      expect(await store.uploads.markCompleted(expired.id, made(), T0 + 1000)).toBe(false)
      expect(await store.uploads.markCompleted(expired.id, made(), T0 + 2000)).toBe(false)
      // Still as it was: open (as of before its expiry), with its chunk list, made nothing.
      expect(await store.uploads.find(user.id, expired.id, T0 + 999)).toEqual(expired)
      expect(await store.uploads.chunks(expired.id)).toEqual(uploadChunks())
      expect(await store.uploads.completion(user.id, expired.id, T0 + 999)).toBeNull()

      const aborted = await insertSession(user)
      expect(await store.uploads.delete(aborted.id)).toBe(true)
      expect(await store.uploads.markCompleted(aborted.id, made(), T0 + 1)).toBe(false)
      expect(await store.uploads.completion(user.id, aborted.id, T0 + 1)).toBeNull()

      expect(await store.uploads.markCompleted(newId(), made(), T0 + 1)).toBe(false)
    })

    it("completes in the caller's transaction: a rollback leaves the session open with its chunk list", async () => {
      const user = await insertUser(store)
      const session = await insertSession(user)
      const rolledBack = store.transaction(async (tx) => {
        expect(await tx.uploads.markCompleted(session.id, made(), T0 + 1)).toBe(true)
        expect(await tx.uploads.chunks(session.id)).toEqual([])
        throw new Error('rolled back')
      })
      await expect(rolledBack).rejects.toThrow('rolled back')
      expect(await store.uploads.find(user.id, session.id, T0 + 1)).toEqual(session)
      expect(await store.uploads.chunks(session.id)).toEqual(uploadChunks())
      expect(await store.uploads.completion(user.id, session.id, T0 + 1)).toBeNull()
      const committed = made()
      expect(await store.uploads.markCompleted(session.id, committed, T0 + 2)).toBe(true)
      expect(await store.uploads.completion(user.id, session.id, T0 + 2)).toEqual(answered(committed))
    })

    it('lets exactly one of ten concurrent completes of a session succeed, and keeps what it made', async () => {
      const user = await insertUser(store)
      const session = await insertSession(user)
      const attempts = Array.from({ length: 10 }, (_, i) => made(i % 2 === 1))
      const answers = await Promise.all(
        attempts.map((attempt) =>
          store.transaction((tx) => tx.uploads.markCompleted(session.id, attempt, T0 + 1)),
        ),
      )
      expect(answers.filter((answer) => answer)).toHaveLength(1)
      expect(await store.uploads.completion(user.id, session.id, T0 + 1)).toEqual(
        answered(attempts[answers.indexOf(true)] as UploadCompletion),
      )
      expect(await store.uploads.chunks(session.id)).toEqual([])
      expect(await store.uploads.find(user.id, session.id, T0 + 1)).toBeNull()
    })

    it("stops protecting a completed session's chunks: the collector may claim them, stray copies are orphans", async () => {
      const user = await insertUser(store)
      await insertChunks(store, [hash('done'), hash('shared'), hash('free')])
      const completed = await insertUploadNaming(store, user, [hash('done'), hash('shared')])
      await insertUploadNaming(store, user, [hash('shared')])
      await store.collector.mark(T0)
      const strays = [hash('done'), hash('shared')].map((chunkHash) => ({
        hash: chunkHash,
        generation: newGeneration(),
      }))
      const orphans = (copies: BlobKey[]) =>
        store.transaction(async (tx) => {
          await tx.chunks.guard('collect')
          return tx.collector.orphans(copies)
        })
      expect(hashesOf(await store.collector.claimable(T0, 10))).toEqual([hash('free')])
      expect(await orphans(strays)).toEqual([])

      expect(await store.uploads.markCompleted(completed.id, made(), T0 + 1)).toBe(true)
      // `shared` is still named by the open session; `done` by nothing now (a version's references
      // protect a completed upload's chunks, and this fixture made none).
      expect(hashesOf(await store.collector.claimable(T0, 10))).toEqual(sorted([hash('done'), hash('free')]))
      expect(await orphans(strays)).toEqual([strays[0]])
      const claimed = await store.transaction(async (tx) => {
        await tx.chunks.guard('collect')
        return tx.collector.claim(T0, T0 + 2, 10)
      })
      expect(hashesOf(claimed)).toEqual(sorted([hash('done'), hash('free')]))
    })

    it('deletes only an open session, and answers whether it did', async () => {
      const user = await insertUser(store)
      const session = await insertSession(user)
      const completion = made()
      expect(await store.uploads.markCompleted(session.id, completion, T0 + 1)).toBe(true)
      // An abort after a complete: nothing to delete; what the complete made still answers.
      expect(await store.uploads.delete(session.id)).toBe(false)
      expect(await store.uploads.completion(user.id, session.id, T0 + 1)).toEqual(answered(completion))
      expect(await store.uploads.delete(newId())).toBe(false)

      const open = await insertSession(user)
      expect(await store.uploads.delete(open.id)).toBe(true)
      expect(await store.uploads.find(user.id, open.id, T0)).toBeNull()
      expect(await store.uploads.chunks(open.id)).toEqual([])
      expect(await store.uploads.delete(open.id)).toBe(false)
    })

    it('deletes expired sessions, completed ones too, with their chunk lists, and counts them', async () => {
      const user = await insertUser(store)
      const openExpired = await insertSession(user, { expiresAt: T0 + 10 })
      const doneExpired = await insertSession(user, { expiresAt: T0 + 10 })
      const doneLive = await insertSession(user, { expiresAt: T0 + 11 })
      const openLive = await insertSession(user, { expiresAt: T0 + 11 })
      const doneLiveMade = made(true)
      expect(await store.uploads.markCompleted(doneExpired.id, made(), T0)).toBe(true)
      expect(await store.uploads.markCompleted(doneLive.id, doneLiveMade, T0)).toBe(true)

      expect(await store.uploads.deleteExpired(T0 + 10)).toBe(2)
      // Gone: even asked as of before their expiry, neither answers.
      expect(await store.uploads.find(user.id, openExpired.id, T0)).toBeNull()
      expect(await store.uploads.chunks(openExpired.id)).toEqual([])
      expect(await store.uploads.completion(user.id, doneExpired.id, T0)).toBeNull()
      // The unexpired ones stay, open or completed.
      expect(await store.uploads.completion(user.id, doneLive.id, T0 + 10)).toEqual(answered(doneLiveMade))
      expect(await store.uploads.find(user.id, openLive.id, T0 + 10)).toEqual(openLive)
      expect(await store.uploads.chunks(openLive.id)).toEqual(uploadChunks())
      expect(await store.uploads.deleteExpired(T0 + 10)).toBe(0)
      expect(await store.uploads.deleteExpired(T0 + 11)).toBe(2)
      expect(await store.uploads.completion(user.id, doneLive.id, T0 + 10)).toBeNull()
    })

    it('sets states by hash in this session only, for more hashes than one statement takes, repeats and all', async () => {
      const user = await insertUser(store)
      const all = longList(2500).map((chunk) => ({ ...chunk, state: 'needed' as const }))
      const session = upload(user.id, user.rootFolderId, { totalChunks: all.length, size: 4 * all.length })
      await store.uploads.insert(session, all)
      const even = all.filter((chunk) => chunk.index % 2 === 0).map((chunk) => chunk.hash)
      const other = await insertUploadNaming(store, user, [even[0]!, even.at(-1)!, all[1]!.hash])

      // 1250 distinct hashes, each twice.
      await store.uploads.setStateByHash(session.id, [...even, ...[...even].reverse()], 'prove')
      expect((await store.uploads.chunks(session.id)).map((chunk) => chunk.state)).toEqual(
        all.map((chunk) => (chunk.index % 2 === 0 ? 'prove' : 'needed')),
      )
      expect((await store.uploads.chunks(other.id)).map((chunk) => chunk.state)).toEqual([
        'needed',
        'needed',
        'needed',
      ])
    })
  })
}

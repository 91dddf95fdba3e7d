import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { AppError } from '../../src/domain/errors.js'
import { newId } from '../../src/domain/ids.js'
import type { NodeRecord, UploadChunkRecord, UploadRecord } from '../../src/domain/model.js'
import type { MetadataStore } from '../../src/ports/metadata-store.js'
import {
  binaryCompare,
  chunkList,
  hash,
  insertFile,
  insertFolder,
  insertUser,
  insertVersion,
  T0,
} from './metadata-fixtures.js'

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
      expect(await store.nodes.findLiveChild(user.rootFolderId, 'Report.pdf')).toBeNull()
    })

    it('keeps sibling names unique across files and folders (NAME_TAKEN)', async () => {
      const user = await insertUser(store)
      const a = await insertFolder(store, user, user.rootFolderId, 'a')
      await rejectsWithCode(insertFolder(store, user, user.rootFolderId, 'a'), 'NAME_TAKEN')
      await rejectsWithCode(insertFile(store, user, user.rootFolderId, 'a'), 'NAME_TAKEN')
      // Same name elsewhere, or differing only by case, is another name.
      await insertFile(store, user, a.id, 'a')
      await insertFile(store, user, user.rootFolderId, 'A')
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
      for (const name of ['0', 'B']) await insertFile(store, user, root, name)
      const names = async (page: Parameters<MetadataStore['nodes']['listLiveChildren']>[1]) =>
        (await store.nodes.listLiveChildren(root, page)).map((n) => `${n.kind}:${n.name}`)
      expect(await names({ limit: 3 })).toEqual(['folder:a', 'folder:b', 'folder:c'])
      expect(await names({ limit: 3, after: { kind: 'folder', name: 'c' } })).toEqual(['file:0', 'file:B'])
      expect(await names({ limit: 2, after: { kind: 'folder', name: 'b' } })).toEqual(['folder:c', 'file:0'])
      expect(await names({ limit: 3, after: { kind: 'file', name: '0' } })).toEqual(['file:B'])
      expect(await names({ limit: 3, after: { kind: 'file', name: 'B' } })).toEqual([])
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
          await tx.chunks.insert(hash('doomed'), 1, T0)
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
    it('inserts a chunk once: true, then false', async () => {
      expect(await store.chunks.insert(hash(1), 100, T0)).toBe(true)
      expect(await store.chunks.insert(hash(1), 100, T0 + 1)).toBe(false)
      expect(await store.chunks.find(hash(1))).toEqual({
        hash: hash(1),
        size: 100,
        refCount: 0,
        state: 'live',
      })
      expect(await store.chunks.find(hash(2))).toBeNull()
    })

    it('answers which hashes are stored', async () => {
      await store.chunks.insert(hash(1), 1, T0)
      await store.chunks.insert(hash(3), 1, T0)
      expect(await store.chunks.stored([hash(1), hash(2), hash(3), hash(1)])).toEqual(
        new Set([hash(1), hash(3)]),
      )
      expect(await store.chunks.stored([])).toEqual(new Set())
    })

    it('adds references for thousands of distinct hashes', async () => {
      const hashes = Array.from({ length: 2560 }, (_, i) => hash(i))
      await store.transaction(async (tx) => {
        for (const h of hashes) await tx.chunks.insert(h, 4096, T0)
      })
      expect(await store.chunks.stored(hashes)).toEqual(new Set(hashes))
      const counts = new Map(hashes.map((h, i) => [h, (i % 3) + 1]))
      await store.transaction((tx) => tx.chunks.addReferences(counts))
      await store.chunks.dropReferences(new Map([[hash(0), 1]]))
      expect(await store.chunks.find(hash(0))).toEqual({
        hash: hash(0),
        size: 4096,
        refCount: 0,
        state: 'live',
      })
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
  })

  describe('uploads', () => {
    const upload = (
      userId: string,
      folderId: string,
      overrides: Partial<UploadRecord> = {},
    ): UploadRecord => ({
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
    })
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

    it('sets chunk states by hash and by index', async () => {
      const user = await insertUser(store)
      const session = upload(user.id, user.rootFolderId)
      await store.uploads.insert(session, uploadChunks())
      await store.uploads.setStateByHash(session.id, hash('x'), 'prove')
      expect((await store.uploads.chunks(session.id)).map((c) => c.state)).toEqual([
        'prove',
        'prove',
        'prove',
      ])
      await store.uploads.setStateByIndex(session.id, [0, 1], 'ok')
      await store.uploads.setStateByIndex(session.id, [], 'needed')
      expect((await store.uploads.chunks(session.id)).map((c) => c.state)).toEqual(['ok', 'ok', 'prove'])
    })

    it('deletes a session with its chunk list', async () => {
      const user = await insertUser(store)
      const session = upload(user.id, user.rootFolderId)
      await store.uploads.insert(session, uploadChunks())
      await store.uploads.delete(session.id)
      expect(await store.uploads.find(user.id, session.id, T0)).toBeNull()
      expect(await store.uploads.chunks(session.id)).toEqual([])
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
      await store.uploads.setStateByIndex(
        session.id,
        chunks.map((c) => c.index),
        'ok',
      )
      expect((await store.uploads.chunks(session.id)).every((c) => c.state === 'ok')).toBe(true)
    })
  })
}

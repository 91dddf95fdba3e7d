import { describe, expect, it } from 'vitest'
import { AppError } from '../../../src/domain/errors.js'
import { newId } from '../../../src/domain/ids.js'
import type { MemberRole, NodeRecord } from '../../../src/domain/model.js'
import type { MetadataStore } from '../../../src/ports/metadata-store.js'
import {
  binaryCompare,
  hash,
  insertFile,
  insertFolder,
  insertUser,
  node,
  rejectsWithCode,
  sorted,
  T0,
} from '../metadata-fixtures.js'
import { type OpenStore, useFreshStore } from './fresh-store.js'

/** What NodeRepository promises (src/ports/metadata/node-repository.ts): names, listings, lineage, trash. */
export function nodeRepositoryContract(open: OpenStore): void {
  describe('NodeRepository', () => {
    let store: MetadataStore
    useFreshStore(open, (opened) => {
      store = opened
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

      it('raises a plain error, not NAME_TAKEN, for a reused node id', async () => {
        const user = await insertUser(store)
        const folder = await insertFolder(store, user, user.rootFolderId, 'one')
        const clash = node({ id: folder.id, ownerId: user.id, parentId: user.rootFolderId, name: 'two' })
        const error = await store.nodes.insert(clash).then(
          () => null,
          (caught: unknown) => caught,
        )
        expect(error).toBeInstanceOf(Error)
        expect(error).not.toBeInstanceOf(AppError)
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
        expect(await names({ limit: 2, after: { kind: 'folder', name: 'b' } })).toEqual([
          'folder:c',
          'file:0',
        ])
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

      it('walks the lineage with the role a user has as a member of each node', async () => {
        const owner = await insertUser(store)
        const [ann, bob] = [await insertUser(store), await insertUser(store)]
        const a = await insertFolder(store, owner, owner.rootFolderId, 'a')
        const b = await insertFolder(store, owner, a.id, 'b')
        const c = await insertFile(store, owner, b.id, 'c')
        const member = (folderId: string, userId: string, role: MemberRole) =>
          store.sharing.putMember({ folderId, userId, role, addedBy: owner.id, createdAt: T0 })
        await member(a.id, ann.id, 'viewer')
        await member(b.id, ann.id, 'editor')
        await member(b.id, bob.id, 'viewer')
        const lineage = await store.nodes.lineage(c.id)
        const roles = new Map<string, MemberRole>([
          [a.id, 'viewer'],
          [b.id, 'editor'],
        ])
        expect(await store.nodes.lineageWithRoles(ann.id, c.id)).toEqual(
          lineage.map((node) => ({ node, memberRole: roles.get(node.id) ?? null })),
        )
        // Another member's roles, and none for the owner (who is no member of their own folders).
        expect((await store.nodes.lineageWithRoles(bob.id, c.id)).map((step) => step.memberRole)).toEqual([
          null,
          'viewer',
          null,
          null,
        ])
        expect((await store.nodes.lineageWithRoles(owner.id, c.id)).map((step) => step.node)).toEqual(lineage)
        expect(
          (await store.nodes.lineageWithRoles(owner.id, c.id)).every((step) => step.memberRole === null),
        ).toBe(true)
        expect(await store.nodes.lineageWithRoles(ann.id, newId())).toEqual([])
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
  })
}

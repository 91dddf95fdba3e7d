import { beforeEach, describe, expect, it } from 'vitest'
import { openPostgresMetadataStore } from '../../../src/adapters/postgres/postgres-metadata-store.js'
import { newId } from '../../../src/domain/ids.js'
import type { FolderMember, MemberRole, NodeRecord, ShareLink, User } from '../../../src/domain/model.js'
import type { PasswordAttemptLimits } from '../../../src/ports/metadata/sharing-repository.js'
import type { MetadataStore } from '../../../src/ports/metadata-store.js'
import type { TestMetadataStore } from '../../helpers/databases.js'
import { binaryCompare, hash, insertFile, insertFolder, insertUser, T0 } from '../metadata-fixtures.js'
import { type OpenStore, useFreshStore } from './fresh-store.js'

/** A membership of `user` in `folder`, added by the folder's owner. */
const membership = (folder: NodeRecord, user: User, role: MemberRole, createdAt = T0): FolderMember => ({
  folderId: folder.id,
  userId: user.id,
  role,
  addedBy: folder.ownerId,
  createdAt,
})

/** A live link to `item` (not inserted), with overridable fields. */
const linkTo = (item: NodeRecord, overrides: Partial<ShareLink> = {}): ShareLink => ({
  id: newId(),
  token: newId(),
  ownerId: item.ownerId,
  nodeId: item.id,
  passwordHash: null,
  expiresAt: null,
  createdAt: T0,
  revokedAt: null,
  downloads: 0,
  ...overrides,
})

/** For answers whose order is not promised. */
const byFolderThenUser = (a: FolderMember, b: FolderMember): number =>
  binaryCompare(a.folderId, b.folderId) || binaryCompare(a.userId, b.userId)

/**
 * What SharingRepository promises (src/ports/metadata/sharing-repository.ts): folder members,
 * public links, and the link-password throttle.
 */
export function sharingRepositoryContract(open: OpenStore): void {
  describe('SharingRepository', () => {
    let store: MetadataStore
    let opened: TestMetadataStore
    useFreshStore(open, (fresh, where) => {
      store = fresh
      opened = where
    })

    /** A new user's folder `name` at their root. */
    const folderOfNewUser = async (name = 'shared') => {
      const owner = await insertUser(store)
      return { owner, folder: await insertFolder(store, owner, owner.rootFolderId, name) }
    }
    const insertLink = async (link: ShareLink) => {
      await store.sharing.insertLink(link, hash(link.token))
      return link
    }

    describe('members', () => {
      it('adds a member (true), then changes only their role (false)', async () => {
        const { owner, folder } = await folderOfNewUser()
        const ann = await insertUser(store)
        const member = membership(folder, ann, 'viewer')
        expect(await store.sharing.putMember(member)).toBe(true)
        expect(await store.sharing.members(folder.id)).toEqual([member])
        const changed = { ...member, role: 'editor' as const, addedBy: owner.id, createdAt: T0 + 5 }
        expect(await store.sharing.putMember(changed)).toBe(false)
        // Still a member since they were first added.
        expect(await store.sharing.members(folder.id)).toEqual([{ ...member, role: 'editor' }])
        expect(await store.sharing.putMember(member)).toBe(false)
        expect(await store.sharing.members(folder.id)).toEqual([member])
      })

      it('removes a member of that folder only, answering whether there was one', async () => {
        const { folder } = await folderOfNewUser('a')
        const { folder: other } = await folderOfNewUser('b')
        const [ann, bob] = [await insertUser(store), await insertUser(store)]
        for (const m of [membership(folder, ann, 'viewer'), membership(folder, bob, 'editor', T0 + 1)]) {
          await store.sharing.putMember(m)
        }
        await store.sharing.putMember(membership(other, ann, 'editor'))
        expect(await store.sharing.removeMember(folder.id, ann.id)).toBe(true)
        expect(await store.sharing.removeMember(folder.id, ann.id)).toBe(false)
        expect(await store.sharing.removeMember(folder.id, newId())).toBe(false)
        expect(await store.sharing.removeMember(newId(), bob.id)).toBe(false)
        expect(await store.sharing.members(folder.id)).toEqual([membership(folder, bob, 'editor', T0 + 1)])
        expect(await store.sharing.members(other.id)).toEqual([membership(other, ann, 'editor')])
      })

      it("lists a folder's members oldest first", async () => {
        const { folder } = await folderOfNewUser()
        const members: FolderMember[] = []
        for (const at of [T0 + 2, T0, T0 + 3, T0 + 1]) {
          const member = membership(folder, await insertUser(store), 'viewer', at)
          await store.sharing.putMember(member)
          members.push(member)
        }
        const oldestFirst = [...members].sort((a, b) => a.createdAt - b.createdAt)
        expect(await store.sharing.members(folder.id)).toEqual(oldestFirst)
        expect(await store.sharing.members(newId())).toEqual([])
      })

      it('answers the memberships of a user among folders, and every member of any of them', async () => {
        const [{ folder: a }, { folder: b }, { folder: c }] = [
          await folderOfNewUser('a'),
          await folderOfNewUser('b'),
          await folderOfNewUser('c'),
        ]
        const [ann, bob, carl] = [await insertUser(store), await insertUser(store), await insertUser(store)]
        const annA = membership(a, ann, 'viewer')
        const bobA = membership(a, bob, 'editor')
        const annB = membership(b, ann, 'editor')
        const bobC = membership(c, bob, 'viewer')
        for (const m of [annA, bobA, annB, bobC]) await store.sharing.putMember(m)

        const lineage = [a.id, b.id, c.id, newId()]
        expect((await store.sharing.memberships(ann.id, lineage)).sort(byFolderThenUser)).toEqual(
          [annA, annB].sort(byFolderThenUser),
        )
        expect(await store.sharing.memberships(carl.id, lineage)).toEqual([])
        expect(await store.sharing.memberships(ann.id, [])).toEqual([])
        // More folders than one statement takes.
        const many = [...Array.from({ length: 2500 }, () => newId()), b.id]
        expect(await store.sharing.memberships(ann.id, many)).toEqual([annB])

        expect((await store.sharing.membersOfAny([a.id, b.id])).sort(byFolderThenUser)).toEqual(
          [annA, bobA, annB].sort(byFolderThenUser),
        )
        expect((await store.sharing.membersOfAny([...many, c.id])).sort(byFolderThenUser)).toEqual(
          [annB, bobC].sort(byFolderThenUser),
        )
        expect(await store.sharing.membersOfAny([])).toEqual([])
      })

      it("lists the live folders shared with a user, most recently shared first, with their owners' emails", async () => {
        const { owner: olga, folder: older } = await folderOfNewUser('older')
        const { owner: pete, folder: newer } = await folderOfNewUser('newer')
        const trashed = await insertFolder(store, olga, olga.rootFolderId, 'trashed')
        const [ann, bob] = [await insertUser(store), await insertUser(store)]
        const annOlder = membership(older, ann, 'viewer', T0 + 1)
        const annNewer = membership(newer, ann, 'editor', T0 + 3)
        await store.sharing.putMember(annOlder)
        await store.sharing.putMember(annNewer)
        await store.sharing.putMember(membership(trashed, ann, 'editor', T0 + 2))
        await store.sharing.putMember(membership(older, bob, 'viewer', T0 + 4))
        await store.nodes.trashSubtree(trashed.id, T0 + 5)

        expect(await store.sharing.sharedWith(ann.id)).toEqual([
          { member: annNewer, folder: await store.nodes.findLive(pete.id, newer.id), ownerEmail: pete.email },
          { member: annOlder, folder: await store.nodes.findLive(olga.id, older.id), ownerEmail: olga.email },
        ])
        expect((await store.sharing.sharedWith(bob.id)).map((shared) => shared.folder.id)).toEqual([older.id])
        expect(await store.sharing.sharedWith(olga.id)).toEqual([])
      })
    })

    describe('links', () => {
      it('finds a link by the hash of its token only, revoked or expired too', async () => {
        const owner = await insertUser(store)
        const file = await insertFile(store, owner, owner.rootFolderId, 'f', 3)
        const plain = await insertLink(linkTo(file))
        const guarded = await insertLink(
          linkTo(file, { passwordHash: 'argon2id$fake', expiresAt: T0 - 1, createdAt: T0 + 1 }),
        )
        expect(await store.sharing.findLink(hash(plain.token))).toEqual(plain)
        expect(await store.sharing.findLink(hash(guarded.token))).toEqual(guarded)
        expect(await store.sharing.findLink(plain.token)).toBeNull()
        expect(await store.sharing.findLink(hash('unknown'))).toBeNull()
        expect(await store.sharing.revokeLink(owner.id, plain.id, T0 + 9)).toBe(true)
        expect(await store.sharing.findLink(hash(plain.token))).toEqual({ ...plain, revokedAt: T0 + 9 })
      })

      it("lists the owner's links that are not revoked, newest first, with their items in any state", async () => {
        const owner = await insertUser(store)
        const other = await insertUser(store)
        const file = await insertFile(store, owner, owner.rootFolderId, 'file', 3)
        const folder = await insertFolder(store, owner, owner.rootFolderId, 'folder')
        const older = await insertLink(linkTo(file, { createdAt: T0 + 1 }))
        const revoked = await insertLink(linkTo(file, { createdAt: T0 + 2 }))
        const newer = await insertLink(linkTo(folder, { createdAt: T0 + 3 }))
        const theirs = await insertLink(linkTo(await insertFile(store, other, other.rootFolderId, 'x')))
        await store.sharing.revokeLink(owner.id, revoked.id, T0 + 4)
        await store.nodes.trashSubtree(folder.id, T0 + 5)

        expect(await store.sharing.linksOf(owner.id)).toEqual([
          { link: newer, node: await store.nodes.findAnyState(folder.id) },
          { link: older, node: await store.nodes.findAnyState(file.id) },
        ])
        expect((await store.sharing.linksOf(other.id)).map((entry) => entry.link)).toEqual([theirs])
        expect(await store.sharing.linksOf(newId())).toEqual([])
      })

      it("revokes only its owner's live link, once", async () => {
        const owner = await insertUser(store)
        const other = await insertUser(store)
        const file = await insertFile(store, owner, owner.rootFolderId, 'f')
        const link = await insertLink(linkTo(file))
        expect(await store.sharing.revokeLink(other.id, link.id, T0 + 1)).toBe(false)
        expect(await store.sharing.findLink(hash(link.token))).toEqual(link)
        expect(await store.sharing.revokeLink(owner.id, link.id, T0 + 2)).toBe(true)
        // Revoked already: the first revocation's time stays.
        expect(await store.sharing.revokeLink(owner.id, link.id, T0 + 3)).toBe(false)
        expect(await store.sharing.findLink(hash(link.token))).toEqual({ ...link, revokedAt: T0 + 2 })
        expect(await store.sharing.revokeLink(owner.id, newId(), T0 + 3)).toBe(false)
      })

      it('counts every download of a link, concurrent ones too, and only of that link', async () => {
        const owner = await insertUser(store)
        const file = await insertFile(store, owner, owner.rootFolderId, 'f')
        const [link, other] = [await insertLink(linkTo(file)), await insertLink(linkTo(file))]
        await store.sharing.countDownload(link.id)
        await store.sharing.countDownload(link.id)
        await Promise.all(Array.from({ length: 10 }, () => store.sharing.countDownload(link.id)))
        await store.sharing.countDownload(newId())
        expect(await store.sharing.findLink(hash(link.token))).toEqual({ ...link, downloads: 12 })
        expect(await store.sharing.findLink(hash(other.token))).toEqual(other)
      })
    })

    describe('link password throttle', () => {
      passwordThrottleContract(() => opened)
    })
  })
}

/**
 * Another store on the same data, as a second API node has; null where the database serves one
 * node (SQLite: two connections of one process would wait on each other's locks).
 */
async function openAnotherNode({ config }: TestMetadataStore): Promise<MetadataStore | null> {
  return config.kind === 'postgres' ? openPostgresMetadataStore({ url: config.url, poolSize: 4 }) : null
}

const WINDOW = 15 * 60_000
const LIMITS: PasswordAttemptLimits = { windowMs: WINDOW, perLink: 10, perAddress: 10 }

/** The password throttle: slots are taken before a check, atomically. */
function passwordThrottleContract(current: () => TestMetadataStore): void {
  let opened: TestMetadataStore
  let store: MetadataStore
  let link: ShareLink
  beforeEach(async () => {
    opened = current()
    store = opened.store
    const owner = await insertUser(store)
    const file = await insertFile(store, owner, owner.rootFolderId, 'f')
    link = linkTo(file, { passwordHash: 'argon2id$fake' })
    await store.sharing.insertLink(link, newId())
  })

  const reserve = (on: MetadataStore, address: string, now = T0, limits = LIMITS) =>
    on.sharing.reservePasswordAttempt(link.id, address, now, limits)

  it('grants the link its slots per window, then refuses until the window ends', async () => {
    for (let i = 0; i < 10; i++) {
      expect(await reserve(store, `10.0.0.${i}`, T0 + i)).toEqual({ granted: true, windowStart: T0 })
    }
    expect(await reserve(store, '10.0.1.1', T0 + 100)).toEqual({ granted: false, windowEndsAt: T0 + WINDOW })
    expect(await reserve(store, '10.0.1.1', T0 + WINDOW - 1)).toMatchObject({ granted: false })
    expect(await reserve(store, '10.0.1.1', T0 + WINDOW)).toEqual({ granted: true, windowStart: T0 + WINDOW })
  })

  it('lets one address take only its share of the link', async () => {
    const limits = { ...LIMITS, perAddress: 3 }
    for (let i = 0; i < 3; i++) expect((await reserve(store, 'attacker', T0, limits)).granted).toBe(true)
    expect(await reserve(store, 'attacker', T0, limits)).toEqual({
      granted: false,
      windowEndsAt: T0 + WINDOW,
    })
    // The refused one took nothing from the link: seven slots are left for everyone else.
    const granted = []
    for (let i = 0; i < 9; i++) granted.push((await reserve(store, `visitor ${i % 3}`, T0, limits)).granted)
    expect(granted).toEqual([true, true, true, true, true, true, true, false, false])
    // A new window gives the address its share again.
    expect((await reserve(store, 'attacker', T0 + WINDOW, limits)).granted).toBe(true)
  })

  it('takes a slot back when a password was right, but never from a later window', async () => {
    const limits = { ...LIMITS, perLink: 2, perAddress: 1 }
    const first = await reserve(store, 'owner', T0, limits)
    expect(first).toEqual({ granted: true, windowStart: T0 })
    expect((await reserve(store, 'owner', T0, limits)).granted).toBe(false)
    await store.sharing.refundPasswordAttempt(link.id, 'owner', T0)
    expect((await reserve(store, 'owner', T0, limits)).granted).toBe(true)
    expect((await reserve(store, 'other', T0, limits)).granted).toBe(true)
    expect((await reserve(store, 'third', T0, limits)).granted).toBe(false)

    // Next window: a late refund of the old one gives nothing back.
    expect((await reserve(store, 'owner', T0 + WINDOW, limits)).granted).toBe(true)
    expect((await reserve(store, 'other', T0 + WINDOW, limits)).granted).toBe(true)
    await store.sharing.refundPasswordAttempt(link.id, 'owner', T0)
    expect((await reserve(store, 'third', T0 + WINDOW, limits)).granted).toBe(false)
  })

  it('never grants more than the limit to concurrent callers (on two stores where nodes can be two)', async () => {
    const second = (await openAnotherNode(opened)) ?? store
    try {
      const tries = Array.from({ length: 120 }, (_, i) =>
        reserve(i % 2 === 0 ? store : second, `10.0.0.${i % 7}`, T0 + (i % 5)),
      )
      const answers = await Promise.all(tries)
      expect(answers.filter((answer) => answer.granted)).toHaveLength(10)
      const shares = new Map<string, number>()
      answers.forEach((answer, i) => {
        if (answer.granted) shares.set(`${i % 7}`, (shares.get(`${i % 7}`) ?? 0) + 1)
      })
      expect(Math.max(...shares.values())).toBeLessThanOrEqual(LIMITS.perAddress)
    } finally {
      if (second !== store) await second.close()
    }
  })

  it('never grants an address more than its share to concurrent callers (on two stores where nodes can be two)', async () => {
    const second = (await openAnotherNode(opened)) ?? store
    const limits = { ...LIMITS, perAddress: 2 }
    try {
      const addresses = ['10.0.0.1', '10.0.0.2', '10.0.0.3']
      const answers = await Promise.all(
        Array.from({ length: 60 }, (_, i) =>
          reserve(i % 2 === 0 ? store : second, addresses[i % 3]!, T0, limits),
        ),
      )
      const granted = addresses.map(
        (_, a) => answers.filter((answer, i) => answer.granted && i % 3 === a).length,
      )
      // Each address gets exactly its share; the slots refused to an address are not the link's.
      expect(granted).toEqual([2, 2, 2])
      expect((await reserve(store, 'someone else', T0, limits)).granted).toBe(true)
    } finally {
      if (second !== store) await second.close()
    }
  })

  it('refuses for a link that does not exist', async () => {
    const answer = await store.sharing.reservePasswordAttempt('no such link', 'a', T0, LIMITS)
    expect(answer.granted).toBe(false)
  })
}

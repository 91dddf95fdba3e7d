import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { openServiceFixture, type ServiceFixture } from '../../test/helpers/service-fixture.js'

describe('MemberService', () => {
  let fx: ServiceFixture
  beforeEach(async () => {
    fx = await openServiceFixture()
  })
  afterEach(() => fx.close())

  async function sharedFolder() {
    const owner = await fx.user('owner')
    const guest = await fx.user('guest')
    const { node: folder } = await fx.services.folders.create(owner, { name: 'team' })
    return { owner, guest, folder }
  }

  it('adds a member (created), then changes their role (not created); the owner is listed first', async () => {
    const { owner, guest, folder } = await sharedFolder()
    const added = await fx.services.members.add(owner, {
      folderId: folder.id,
      email: guest.email,
      role: 'viewer',
    })
    expect(added).toMatchObject({ created: true, member: { userId: guest.id, role: 'viewer' } })
    const changed = await fx.services.members.add(owner, {
      folderId: folder.id,
      email: guest.email,
      role: 'editor',
    })
    expect(changed).toMatchObject({ created: false, member: { userId: guest.id, role: 'editor' } })

    const members = await fx.services.members.list(guest, folder.id)
    expect(members.map((m) => [m.userId, m.role])).toEqual([
      [owner.id, 'owner'],
      [guest.id, 'editor'],
    ])
    const shared = await fx.services.members.sharedWithMe(guest)
    expect(shared.map((s) => [s.folder.id, s.member.role, s.ownerEmail])).toEqual([
      [folder.id, 'editor', owner.email],
    ])
  })

  it('puts the shared folder in the new member’s journal', async () => {
    const { owner, guest, folder } = await sharedFolder()
    const before = await fx.services.sync.latest(guest)
    await fx.services.members.add(owner, { folderId: folder.id, email: guest.email, role: 'viewer' })
    const page = await fx.services.sync.changes(guest, { after: before, limit: 10 })
    expect(page.entries.map((e) => [e.nodeId, e.action])).toEqual([[folder.id, 'create']])
  })

  it('refuses an unknown address (404), the owner themselves and the root folder (400)', async () => {
    const { owner, folder } = await sharedFolder()
    const add = (folderId: string, email: string) =>
      fx.services.members.add(owner, { folderId, email, role: 'viewer' })
    await expect(add(folder.id, 'nobody@example.com')).rejects.toMatchObject({ code: 'NOT_FOUND' })
    await expect(add(folder.id, owner.email)).rejects.toMatchObject({ code: 'INVALID_REQUEST' })
    await expect(add(owner.rootFolderId, 'guest@example.com')).rejects.toMatchObject({
      code: 'INVALID_REQUEST',
    })
  })

  it('lets a member leave, and the owner remove; a non-member is 404', async () => {
    const { owner, guest, folder } = await sharedFolder()
    const other = await fx.user('other')
    for (const user of [guest, other]) {
      await fx.services.members.add(owner, { folderId: folder.id, email: user.email, role: 'editor' })
    }
    await fx.services.members.remove(guest, { folderId: folder.id, userId: guest.id })
    await fx.services.members.remove(owner, { folderId: folder.id, userId: other.id })
    expect(await fx.services.members.sharedWithMe(guest)).toEqual([])
    expect((await fx.services.members.list(owner, folder.id)).map((m) => m.role)).toEqual(['owner'])
    await expect(
      fx.services.members.remove(owner, { folderId: folder.id, userId: guest.id }),
    ).rejects.toMatchObject({ code: 'NOT_FOUND' })
  })
})

import { describe, expect, it } from 'vitest'
import { expectAppError } from '../../test/helpers/app-error.js'
import { serviceScene, storeFile } from '../../test/helpers/service-files.js'
import type { MemberRole, User } from '../domain/model.js'
import {
  assertMayRestructure,
  assertSameOwner,
  locate,
  locateFolderWithPath,
  locateLocked,
  locateTarget,
  mayWriteFolder,
  targetFolderId,
} from './access.js'

describe('access (the one permission check)', () => {
  const s = serviceScene()

  /** ann's `team/inner` with `notes.txt` in it; `team` shared with bob as `role` when given. */
  async function sharedTree(role?: MemberRole) {
    const team = await s.mkdir('team')
    const inner = await s.mkdir('inner', team.id)
    const file = await storeFile(s.services, s.ann, 'notes.txt', 'hello', { folderId: inner.id })
    const bob = await s.fx.user('bob')
    if (role) await share(team.id, bob, role)
    return { team, inner, file, bob }
  }
  const share = (folderId: string, user: User, role: MemberRole) =>
    s.services.members.add(s.ann, { folderId, email: user.email, role })

  it('lets the owner do anything to their own live nodes, with no share root', async () => {
    const { inner, file } = await sharedTree()
    for (const need of ['read', 'write', 'own'] as const) {
      const located = await locate(s.fx.meta, s.ann, file.id, need, 'file')
      expect(located).toMatchObject({ node: { id: file.id }, role: 'owner', shareRoot: null })
    }
    expect((await locate(s.fx.meta, s.ann, inner.id, 'own')).node.kind).toBe('folder')
  })

  it('lets a viewer read below the shared folder, and refuses writing or owning with FORBIDDEN', async () => {
    const { team, file, bob } = await sharedTree('viewer')
    const located = await locate(s.fx.meta, bob, file.id, 'read', 'file')
    expect(located).toMatchObject({ node: { id: file.id }, role: 'viewer', shareRoot: { id: team.id } })
    await expectAppError(locate(s.fx.meta, bob, file.id, 'write', 'file'), 'FORBIDDEN')
    await expectAppError(locate(s.fx.meta, bob, team.id, 'own', 'folder'), 'FORBIDDEN')
  })

  it('lets an editor write but not own; the share root is the topmost folder shared, the role the strongest', async () => {
    const { team, inner, file, bob } = await sharedTree('editor')
    expect(await locate(s.fx.meta, bob, file.id, 'write', 'file')).toMatchObject({
      role: 'editor',
      shareRoot: { id: team.id },
    })
    await expectAppError(locate(s.fx.meta, bob, file.id, 'own', 'file'), 'FORBIDDEN')

    // Viewer of the outer folder, editor of the inner one: writes inside, still seen from the outer.
    const carol = await s.fx.user('carol')
    await share(team.id, carol, 'viewer')
    await share(inner.id, carol, 'editor')
    expect(await locate(s.fx.meta, carol, file.id, 'write', 'file')).toMatchObject({
      role: 'editor',
      shareRoot: { id: team.id },
    })
    await expectAppError(locate(s.fx.meta, carol, team.id, 'write', 'folder'), 'FORBIDDEN')
    // The other way round: the stronger role wins whichever folder it is on.
    const dave = await s.fx.user('dave')
    await share(team.id, dave, 'editor')
    await share(inner.id, dave, 'viewer')
    expect((await locate(s.fx.meta, dave, file.id, 'write', 'file')).role).toBe('editor')
  })

  it('answers NOT_FOUND, never FORBIDDEN, for what the caller cannot see at all, whatever it needs', async () => {
    const { team, file, bob } = await sharedTree()
    for (const need of ['read', 'write', 'own'] as const) {
      for (const id of [file.id, team.id, s.ann.rootFolderId]) {
        await expectAppError(locate(s.fx.meta, bob, id, need), 'NOT_FOUND')
      }
    }
    // Unknown ids and non-ids alike, and the message names what was looked for.
    const unknown = '00000000-0000-4000-8000-000000000000'
    expect(
      (await expectAppError(locate(s.fx.meta, s.ann, unknown, 'read', 'file'), 'NOT_FOUND')).message,
    ).toBe('file not found')
    await expectAppError(locate(s.fx.meta, s.ann, 'not an id', 'read'), 'NOT_FOUND')
    await expectAppError(locate(s.fx.meta, s.ann, '', 'read', 'folder'), 'NOT_FOUND')
  })

  it('answers NOT_FOUND for a node of the other kind, owner or member', async () => {
    const { team, file, bob } = await sharedTree('editor')
    await expectAppError(locate(s.fx.meta, s.ann, file.id, 'read', 'folder'), 'NOT_FOUND')
    await expectAppError(locate(s.fx.meta, s.ann, team.id, 'read', 'file'), 'NOT_FOUND')
    await expectAppError(locate(s.fx.meta, bob, file.id, 'read', 'folder'), 'NOT_FOUND')
    await expectAppError(locate(s.fx.meta, bob, team.id, 'read', 'file'), 'NOT_FOUND')
  })

  it('hides trashed nodes, and everything below a trashed folder, from owner and members alike', async () => {
    const { team, inner, file, bob } = await sharedTree('editor')
    await s.services.folders.delete(s.ann, inner.id)
    for (const user of [s.ann, bob]) {
      await expectAppError(locate(s.fx.meta, user, inner.id, 'read'), 'NOT_FOUND')
      await expectAppError(locate(s.fx.meta, user, file.id, 'read', 'file'), 'NOT_FOUND')
      await expectAppError(locateFolderWithPath(s.fx.meta, user, inner.id, 'read'), 'NOT_FOUND')
    }
    expect(await mayWriteFolder(s.fx.meta, bob.id, inner.id)).toBe(false)
    expect((await locate(s.fx.meta, bob, team.id, 'read')).role).toBe('editor')

    // The shared folder itself in the trash: the member sees nothing of it any more.
    await s.services.folders.delete(s.ann, team.id)
    await expectAppError(locate(s.fx.meta, bob, team.id, 'read'), 'NOT_FOUND')
    expect(await mayWriteFolder(s.fx.meta, bob.id, team.id)).toBe(false)
  })

  it('stops answering for a member once they are removed', async () => {
    const { team, file, bob } = await sharedTree('editor')
    await s.services.members.remove(s.ann, { folderId: team.id, userId: bob.id })
    await expectAppError(locate(s.fx.meta, bob, file.id, 'read', 'file'), 'NOT_FOUND')
  })

  it('gives a folder’s path as the caller sees it: from the owner’s root, or from the shared folder', async () => {
    const { inner, bob } = await sharedTree('viewer')
    const deep = await s.mkdir('deep', inner.id)
    expect(await locateFolderWithPath(s.fx.meta, s.ann, deep.id, 'own')).toMatchObject({
      path: '/team/inner/deep',
      role: 'owner',
    })
    expect((await locateFolderWithPath(s.fx.meta, s.ann, s.ann.rootFolderId, 'read')).path).toBe('/')
    expect(await locateFolderWithPath(s.fx.meta, bob, deep.id, 'read')).toMatchObject({
      path: '/team/inner/deep',
      role: 'viewer',
    })
    await expectAppError(locateFolderWithPath(s.fx.meta, bob, deep.id, 'write'), 'FORBIDDEN')

    // Shared only below: the path starts at the folder shared.
    const carol = await s.fx.user('carol')
    await share(inner.id, carol, 'editor')
    expect((await locateFolderWithPath(s.fx.meta, carol, deep.id, 'write')).path).toBe('/inner/deep')
    const stranger = await s.fx.user('dave')
    await expectAppError(locateFolderWithPath(s.fx.meta, stranger, deep.id, 'read'), 'NOT_FOUND')
  })

  it('says who may upload into a folder: its owner and editors, not viewers, strangers or a file', async () => {
    const { team, inner, file, bob } = await sharedTree('viewer')
    const carol = await s.fx.user('carol')
    await share(inner.id, carol, 'editor')
    expect(await mayWriteFolder(s.fx.meta, s.ann.id, inner.id)).toBe(true)
    expect(await mayWriteFolder(s.fx.meta, carol.id, inner.id)).toBe(true)
    expect(await mayWriteFolder(s.fx.meta, carol.id, team.id)).toBe(false)
    expect(await mayWriteFolder(s.fx.meta, bob.id, inner.id)).toBe(false)
    expect(await mayWriteFolder(s.fx.meta, (await s.fx.user('dave')).id, inner.id)).toBe(false)
    expect(await mayWriteFolder(s.fx.meta, s.ann.id, file.id)).toBe(false)
    // A viewer of the outer folder made editor of it: writes anywhere below.
    await share(team.id, bob, 'editor')
    expect(await mayWriteFolder(s.fx.meta, bob.id, inner.id)).toBe(true)
  })

  it('takes a target folder of null or absent as the caller’s root, and refuses a non-id as a bad request', async () => {
    expect(targetFolderId(s.ann, null, 'parentId')).toBe(s.ann.rootFolderId)
    expect(targetFolderId(s.ann, undefined, 'parentId')).toBe(s.ann.rootFolderId)
    const docs = await s.mkdir('docs')
    expect(targetFolderId(s.ann, docs.id, 'parentId')).toBe(docs.id)
    for (const bad of ['', 'docs', 42, {}, docs.id.toUpperCase()]) {
      expect(() => targetFolderId(s.ann, bad, 'folderId')).toThrowError(
        expect.objectContaining({ code: 'INVALID_REQUEST', message: 'folderId must be a folder id or null' }),
      )
    }
  })

  it('locates a target folder to write in: the root by default, 404 for a stranger’s, 403 for a viewer', async () => {
    const { team, file, bob } = await sharedTree('viewer')
    expect((await locateTarget(s.fx.meta, s.ann, undefined, 'folderId')).node.id).toBe(s.ann.rootFolderId)
    expect((await locateTarget(s.fx.meta, bob, null, 'folderId')).node.id).toBe(bob.rootFolderId)
    await expectAppError(locateTarget(s.fx.meta, bob, team.id, 'folderId'), 'FORBIDDEN')
    expect((await locateTarget(s.fx.meta, bob, team.id, 'folderId', 'read')).role).toBe('viewer')
    await expectAppError(locateTarget(s.fx.meta, s.ann, file.id, 'folderId'), 'NOT_FOUND')
    await expectAppError(locateTarget(s.fx.meta, s.ann, bob.rootFolderId, 'folderId'), 'NOT_FOUND')
  })

  it('answers in a transaction as outside one (locateLocked)', async () => {
    const { file, bob } = await sharedTree('viewer')
    await s.fx.meta.transaction(async (tx) => {
      expect((await locateLocked(tx, bob, file.id, 'read', 'file')).role).toBe('viewer')
      await expectAppError(locateLocked(tx, bob, file.id, 'write', 'file'), 'FORBIDDEN')
      await expectAppError(locateLocked(tx, bob, s.ann.rootFolderId, 'read'), 'NOT_FOUND')
    })
  })

  it('keeps a shared folder itself for its owner to restructure; editors restructure inside it', async () => {
    const { team, inner, bob } = await sharedTree('editor')
    const itself = await locate(s.fx.meta, bob, team.id, 'write', 'folder')
    expect(() => assertMayRestructure(itself)).toThrowError(expect.objectContaining({ code: 'FORBIDDEN' }))
    const below = await locate(s.fx.meta, bob, inner.id, 'write')
    expect(() => assertMayRestructure(below)).not.toThrow()
    const asOwner = await locate(s.fx.meta, s.ann, team.id, 'own')
    expect(() => assertMayRestructure(asOwner)).not.toThrow()
  })

  it('refuses moves across owners (MOVE_ACROSS_OWNERS)', async () => {
    const { team, inner, bob } = await sharedTree('editor')
    expect(() => assertSameOwner(inner, team)).not.toThrow()
    const bobs = (await s.services.folders.create(bob, { name: 'mine' })).node
    expect(() => assertSameOwner(bobs, team)).toThrowError(
      expect.objectContaining({ code: 'MOVE_ACROSS_OWNERS' }),
    )
  })
})

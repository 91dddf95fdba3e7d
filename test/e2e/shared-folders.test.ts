import { randomBytes } from 'node:crypto'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { ApiClient } from '../helpers/api-client.js'
import { DATABASES } from '../helpers/databases.js'
import { SyncSocket } from '../helpers/sync-client.js'
import { startTestServer, type TestServer } from '../helpers/test-server.js'

const QUOTA = 10_000

describe.each(DATABASES)('shared folders on %s', ({ name: backend, available }) => {
  let server: TestServer
  let ann: ApiClient
  let bob: ApiClient
  let cat: ApiClient
  const sockets: SyncSocket[] = []
  beforeAll(async () => {
    if (!available) return
    server = await startTestServer(backend, { DEFAULT_QUOTA_BYTES: String(QUOTA) })
    ann = await new ApiClient(server.api).register()
    bob = await new ApiClient(server.api).register()
    cat = await new ApiClient(server.api).register()
  })
  afterAll(async () => {
    await Promise.all(sockets.map((socket) => socket.close()))
    await server?.stop()
  })

  const tag = () => randomBytes(4).toString('hex')
  const invite = async (folderId: string, client: ApiClient, role: 'viewer' | 'editor') => {
    const reply = await ann.post(`/folders/${folderId}/members`, { email: client.user.email, role })
    expect(reply.status).toBe(201)
    return reply.body
  }
  const listen = async (client: ApiClient) => {
    const socket = await SyncSocket.open(client)
    sockets.push(socket)
    await socket.waitFor((s) => s.messages[0]?.type === 'hello')
    return socket
  }
  const changesOf = async (client: ApiClient, cursor: string) =>
    (await client.get(`/sync/changes?cursor=${cursor}&limit=1000`)).body.changes as any[]
  const latest = async (client: ApiClient) => (await client.get('/sync/latest')).body.cursor as string

  it.skipIf(!available)('shows a shared folder to its member where they look, and not above it', async () => {
    const projects = (await ann.post('/folders', { name: `Projects ${tag()}` })).body
    const shared = (await ann.post('/folders', { name: 'Shared', parentId: projects.id })).body
    const member = await invite(shared.id, bob, 'viewer')
    expect(member).toEqual({
      userId: bob.user.id,
      email: bob.user.email,
      role: 'viewer',
      createdAt: expect.any(String),
    })

    const mine = (await bob.get('/shared-with-me')).body.items
    expect(mine).toContainEqual({
      type: 'folder',
      id: shared.id,
      name: 'Shared',
      role: 'viewer',
      ownerId: ann.user.id,
      ownerEmail: ann.user.email,
      sharedAt: expect.any(String),
      updatedAt: expect.any(String),
    })
    // Its place in the owner's tree is not the member's to see.
    expect((await bob.get(`/folders/${shared.id}`)).body).toMatchObject({ parentId: null, path: '/Shared' })
    const sub = (await ann.post('/folders', { name: 'sub', parentId: shared.id })).body
    expect((await bob.get(`/folders/${sub.id}`)).body).toMatchObject({
      parentId: shared.id,
      path: '/Shared/sub',
    })
    expect((await bob.get(`/files?folderId=${sub.id}`)).body.folder).toMatchObject({ path: '/Shared/sub' })
    expect((await bob.get(`/folders/${projects.id}`)).status).toBe(404)
    expect((await ann.get(`/folders/${shared.id}`)).body).toMatchObject({ parentId: projects.id })

    const members = (await bob.get(`/folders/${shared.id}/members`)).body.members
    expect(members.map((m: { userId: string; role: string }) => [m.userId, m.role])).toEqual([
      [ann.user.id, 'owner'],
      [bob.user.id, 'viewer'],
    ])
    // Again with another role: changed, not added twice.
    const promoted = await ann.post(`/folders/${shared.id}/members`, {
      email: bob.user.email,
      role: 'editor',
    })
    expect(promoted.status).toBe(200)
    expect(promoted.body.role).toBe('editor')
    expect((await bob.get(`/folders/${shared.id}/members`)).body.members).toHaveLength(2)
  })

  it.skipIf(!available)('refuses invitations that make no sense', async () => {
    const folder = (await ann.post('/folders', { name: `odd ${tag()}` })).body
    const tries: [unknown, number][] = [
      [{ email: 'nobody-here@example.com', role: 'viewer' }, 404],
      [{ email: bob.user.email, role: 'admin' }, 400],
      [{ email: bob.user.email }, 400],
      [{ email: 'not an email', role: 'viewer' }, 400],
      [{ email: ann.user.email, role: 'viewer' }, 400],
    ]
    for (const [body, status] of tries)
      expect((await ann.post(`/folders/${folder.id}/members`, body)).status).toBe(status)
    const root = (await ann.get('/files')).body.folder.id
    expect(
      (await ann.post(`/folders/${root}/members`, { email: bob.user.email, role: 'viewer' })).status,
    ).toBe(400)
    expect((await ann.post(`/folders/${root}/share`, {})).status).toBe(400)
  })

  it.skipIf(!available)("counts an editor's uploads against the owner's quota", async () => {
    const folder = (await ann.post('/folders', { name: `quota ${tag()}` })).body
    await invite(folder.id, bob, 'editor')
    const before = {
      ann: await ann.usedBytes(),
      bob: await bob.usedBytes(),
    }
    const file = await bob.upload('from bob.bin', randomBytes(600), { folderId: folder.id })
    expect((await ann.get(`/files/${file.id}`)).status).toBe(200)
    expect(await ann.usedBytes()).toBe(before.ann + 600)
    expect(await bob.usedBytes()).toBe(before.bob)
    // The owner's quota is what runs out, whatever room the editor has of their own.
    const tooBig = await bob.init('too big.bin', randomBytes(QUOTA - before.ann - 600 + 1), {
      folderId: folder.id,
    })
    expect(tooBig.status).toBe(507)
    expect(tooBig.body.error.code).toBe('QUOTA_EXCEEDED')
    // The version history records who wrote it; the file is the owner's.
    expect((await ann.get(`/files/${file.id}/versions`)).body.versions).toHaveLength(1)
  })

  it.skipIf(!available)(
    "sends a member's changes to the owner and every other member, and none after removal",
    async () => {
      const folder = (await ann.post('/folders', { name: `team ${tag()}` })).body
      const annSocket = await listen(ann)
      const bobSocket = await listen(bob)
      const catSocket = await listen(cat)
      await invite(folder.id, bob, 'editor')
      await invite(folder.id, cat, 'viewer')
      // Each member's journal gets the folder itself, at the top of their view.
      for (const socket of [bobSocket, catSocket]) {
        await socket.waitFor((s) => s.changes.some((c) => c.id === folder.id))
        expect(socket.changes.find((c) => c.id === folder.id)).toMatchObject({
          action: 'create',
          kind: 'folder',
          folderId: null,
        })
      }

      const file = await ann.upload('plan.txt', Buffer.from('v1'), { folderId: folder.id })
      const renamed = await bob.patch(`/files/${file.id}`, { name: 'plan v2.txt' })
      expect(renamed.status).toBe(200)
      for (const socket of [annSocket, bobSocket, catSocket]) {
        await socket.waitFor((s) => s.changes.some((c) => c.id === file.id && c.action === 'move'))
        const move = socket.changes.find((c) => c.id === file.id && c.action === 'move')
        expect(move).toMatchObject({ name: 'plan v2.txt', folderId: folder.id, actorId: bob.user.id })
      }

      // Out of the shared folder (the owner's move): gone for the members, moved for the owner.
      const cursors = { ann: await latest(ann), bob: await latest(bob), cat: await latest(cat) }
      const privateFolder = (await ann.post('/folders', { name: `mine ${tag()}` })).body
      expect((await ann.patch(`/files/${file.id}`, { folderId: privateFolder.id })).status).toBe(200)
      expect((await changesOf(bob, cursors.bob)).map((c) => [c.action, c.id])).toEqual([['delete', file.id]])
      expect((await changesOf(cat, cursors.cat)).map((c) => [c.action, c.id])).toEqual([['delete', file.id]])
      expect((await changesOf(ann, cursors.ann)).map((c) => [c.action, c.id])).toEqual([
        ['create', privateFolder.id],
        ['move', file.id],
      ])
      // And back in: created for them.
      const back = { bob: await latest(bob) }
      expect((await ann.patch(`/files/${file.id}`, { folderId: folder.id })).status).toBe(200)
      expect((await changesOf(bob, back.bob)).map((c) => [c.action, c.id, c.folderId])).toEqual([
        ['create', file.id, folder.id],
      ])

      // Removed: at once no access, one last entry, then nothing.
      const removedAt = await latest(bob)
      expect((await ann.delete(`/folders/${folder.id}/members/${bob.user.id}`)).status).toBe(204)
      expect((await bob.get(`/files/${file.id}`)).status).toBe(404)
      expect((await bob.get(`/folders/${folder.id}`)).status).toBe(404)
      expect((await bob.get('/shared-with-me')).body.items.map((i: { id: string }) => i.id)).not.toContain(
        folder.id,
      )
      const catBefore = await latest(cat)
      await ann.upload('after.txt', Buffer.from('after'), { folderId: folder.id })
      expect((await changesOf(bob, removedAt)).map((c) => [c.action, c.id])).toEqual([['delete', folder.id]])
      expect((await changesOf(cat, catBefore)).map((c) => [c.action, c.name])).toEqual([
        ['create', 'after.txt'],
      ])
    },
  )

  it.skipIf(!available)('lets a member leave, and the owner delete the folder for everyone', async () => {
    const folder = (await ann.post('/folders', { name: `leaving ${tag()}` })).body
    await invite(folder.id, bob, 'viewer')
    await invite(folder.id, cat, 'editor')
    expect((await bob.delete(`/folders/${folder.id}/members/${bob.user.id}`)).status).toBe(204)
    expect((await bob.get(`/folders/${folder.id}`)).status).toBe(404)
    const catCursor = await latest(cat)
    expect((await ann.delete(`/folders/${folder.id}`)).status).toBe(204)
    expect((await cat.get(`/folders/${folder.id}`)).status).toBe(404)
    expect((await changesOf(cat, catCursor)).map((c) => [c.action, c.id])).toEqual([['delete', folder.id]])
    expect((await ann.post(`/trash/${folder.id}/restore`)).status).toBe(200)
    expect((await cat.get(`/folders/${folder.id}`)).status).toBe(200)
  })
})

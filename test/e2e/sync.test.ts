import { randomBytes } from 'node:crypto'
import { afterAll, beforeAll, describe, expect, it, onTestFinished } from 'vitest'
import { ApiClient } from '../helpers/api-client.js'
import { DATABASES } from '../helpers/databases.js'
import { SyncSocket } from '../helpers/sync-client.js'
import { serverWithUsers, startTestServer, type TestServer } from '../helpers/test-server.js'

/** A second device of the same account: its own login, the same journal. */
async function secondDevice(client: ApiClient, password = 'correct horse battery'): Promise<ApiClient> {
  const device = new ApiClient(client.api)
  const login = await device.post('/auth/login', { email: client.user.email, password })
  if (login.status !== 200) throw new Error(`login failed: ${login.status}`)
  device.token = login.body.token
  device.user = login.body.user
  return device
}

/** Every change after `cursor`, page by page, as an offline client catches up. */
async function readAll(client: ApiClient, cursor: string | undefined, limit = 100) {
  const changes: any[] = []
  let position = cursor
  for (let pages = 0; pages < 10_000; pages++) {
    const query = new URLSearchParams({ limit: String(limit), ...(position ? { cursor: position } : {}) })
    const reply = await client.get(`/sync/changes?${query}`)
    if (reply.status !== 200) throw new Error(`changes: ${reply.status} ${JSON.stringify(reply.body)}`)
    changes.push(...reply.body.changes)
    position = reply.body.cursor
    if (!reply.body.hasMore) return { changes, cursor: position as string }
  }
  throw new Error('the journal never ended')
}

const latest = async (client: ApiClient): Promise<string> => (await client.get('/sync/latest')).body.cursor

describe.each(DATABASES)('sync on %s', ({ name: backend, available }) => {
  const setup = serverWithUsers(backend, available, 2)
  let ann: ApiClient
  let bob: ApiClient
  const sockets: SyncSocket[] = []
  const open = async (client: ApiClient, options?: Parameters<typeof SyncSocket.open>[1]) => {
    const socket = await SyncSocket.open(client, options)
    sockets.push(socket)
    return socket
  }
  beforeAll(() => {
    ;[ann, bob] = setup.users as [ApiClient, ApiClient]
  })
  afterAll(async () => {
    await Promise.all(sockets.map((socket) => socket.close()))
  })

  it.skipIf(!available)('journals every kind of change, in order, with the contract fields', async () => {
    const start = await latest(ann)
    const folder = (await ann.post('/folders', { name: 'Journal' })).body
    const file = await ann.upload('a.txt', Buffer.from('one'), { folderId: folder.id })
    await ann.upload('a.txt', Buffer.from('two'), { folderId: folder.id })
    await ann.patch(`/files/${file.id}`, { name: 'b.txt' })
    await ann.patch(`/files/${file.id}`, { folderId: null })
    await ann.post(`/files/${file.id}/versions/1/restore`)
    await ann.delete(`/files/${file.id}`)
    await ann.post(`/trash/${file.id}/restore`)
    await ann.patch(`/folders/${folder.id}`, { name: 'Journal 2' })
    await ann.delete(`/folders/${folder.id}`)
    await ann.delete(`/trash/${folder.id}`) // a purge: nothing a client shows changes

    const { changes, cursor } = await readAll(ann, start)
    expect(changes.map((c) => [c.action, c.kind, c.id, c.name, c.folderId, c.version])).toEqual([
      ['create', 'folder', folder.id, 'Journal', null, null],
      ['create', 'file', file.id, 'a.txt', folder.id, 1],
      ['update', 'file', file.id, 'a.txt', folder.id, 2],
      ['move', 'file', file.id, 'b.txt', folder.id, 2],
      ['move', 'file', file.id, 'b.txt', null, 2],
      ['update', 'file', file.id, 'b.txt', null, 3],
      ['delete', 'file', file.id, 'b.txt', null, 3],
      ['restore', 'file', file.id, 'b.txt', null, 3],
      ['move', 'folder', folder.id, 'Journal 2', null, null],
      ['delete', 'folder', folder.id, 'Journal 2', null, null],
    ])
    for (const change of changes) {
      expect(typeof change.cursor).toBe('string')
      expect(change.userId).toBe(ann.user.id)
      expect(change.actorId).toBe(ann.user.id)
      expect(new Date(change.timestamp).toISOString()).toBe(change.timestamp)
    }
    // Cursors are distinct, and the page's cursor is the last change's.
    expect(new Set(changes.map((c) => c.cursor)).size).toBe(changes.length)
    expect(cursor).toBe(changes.at(-1).cursor)
    expect(await latest(ann)).toBe(cursor)
    expect(changes[2]).toMatchObject({ size: 3, contentHash: expect.stringMatching(/^[0-9a-f]{64}$/) })
    // Nothing new after the last cursor.
    const after = await ann.get(`/sync/changes?cursor=${cursor}`)
    expect(after.body).toEqual({ changes: [], cursor, hasMore: false })
  })

  it.skipIf(!available)("shows no user another user's changes", async () => {
    const bobStart = await latest(bob)
    const socket = await open(bob)
    await ann.post('/folders', { name: `private ${randomBytes(4).toString('hex')}` })
    const marker = (await bob.post('/folders', { name: `marker ${randomBytes(4).toString('hex')}` })).body
    await socket.waitFor((s) => s.changes.some((c) => c.id === marker.id))
    expect(socket.changes.map((c) => c.id)).toEqual([marker.id])
    expect((await readAll(bob, bobStart)).changes.map((c) => c.id)).toEqual([marker.id])
  })

  it.skipIf(!available)(
    'pushes a change to the other device, which then reads it from its cursor',
    async () => {
      const laptop = ann
      const phone = await secondDevice(ann)
      const socket = await open(phone)
      await socket.waitFor((s) => s.messages.some((m) => m.type === 'hello'))
      const hello = socket.messages[0] as { type: string; cursor: string; userId: string }
      expect(hello).toMatchObject({ type: 'hello', userId: ann.user.id })

      const file = await laptop.upload(`pushed ${randomBytes(4).toString('hex')}.txt`, Buffer.from('hi'))
      await socket.waitForChanges(1)
      const event = socket.changes[0]
      expect(event).toMatchObject({
        type: 'change',
        userId: ann.user.id,
        fileId: file.id,
        id: file.id,
        folderId: null,
        action: 'create',
        kind: 'file',
        version: 1,
      })
      const read = await phone.get(`/sync/changes?cursor=${hello.cursor}`)
      expect(read.body.changes).toHaveLength(1)
      expect(read.body.changes[0]).toMatchObject({ cursor: event?.cursor, id: file.id, action: 'create' })
      expect(read.body.cursor).toBe(event?.cursor)
    },
  )

  it.skipIf(!available)('catches an offline device up across hundreds of changes, exactly', async () => {
    const offline = await secondDevice(ann)
    const since = await latest(offline)
    const folder = (await ann.post('/folders', { name: `bulk ${randomBytes(4).toString('hex')}` })).body
    const made: string[] = [folder.id]
    for (let i = 0; i < 299; i++) {
      const child = (await ann.post('/folders', { name: `f${i}`, parentId: folder.id })).body
      made.push(child.id)
    }
    for (const limit of [1000, 7, 50]) {
      const { changes, cursor } = await readAll(offline, since, limit)
      expect(changes.map((c) => c.id)).toEqual(made)
      expect(cursor).toBe(await latest(offline))
    }
  })

  it.skipIf(!available)(
    'continues a socket reconnected with its last cursor with no gap and no repeat',
    async () => {
      const device = await secondDevice(ann)
      const first = await open(device)
      const ids: string[] = []
      const make = async (n: number) => {
        for (let i = 0; i < n; i++)
          ids.push(
            (await ann.post('/folders', { name: `r${ids.length} ${randomBytes(3).toString('hex')}` })).body
              .id,
          )
      }
      await make(5)
      await first.waitForChanges(5)
      const cursor = first.lastCursor
      await first.close()
      await make(7) // while disconnected
      const second = await open(device, { cursor })
      await make(3)
      await second.waitForChanges(10)
      await new Promise((resolve) => setTimeout(resolve, 100))
      expect([...first.changes, ...second.changes].map((c) => c.id)).toEqual(ids)
    },
  )

  it.skipIf(!available)(
    'answers a long poll at once when there is news, on a change, or at its timeout',
    async () => {
      const cursor = await latest(ann)
      const idle = Date.now()
      const timedOut = await ann.get(`/sync/longpoll?cursor=${cursor}&timeout=1`)
      expect(timedOut.status).toBe(200)
      expect(timedOut.body).toEqual({ changes: false })
      expect(Date.now() - idle).toBeGreaterThanOrEqual(900)

      const waiting = ann.get(`/sync/longpoll?cursor=${cursor}&timeout=30`)
      await new Promise((resolve) => setTimeout(resolve, 200))
      const started = Date.now()
      await ann.post('/folders', { name: `poll ${randomBytes(4).toString('hex')}` })
      const woken = await waiting
      expect(woken.body).toEqual({ changes: true })
      expect(Date.now() - started).toBeLessThan(10_000)

      const immediate = await ann.get(`/sync/longpoll?cursor=${cursor}&timeout=30`)
      expect(immediate.body).toEqual({ changes: true })
      for (const timeout of ['0', '301', 'x', '1.5']) {
        expect((await ann.get(`/sync/longpoll?cursor=${cursor}&timeout=${timeout}`)).status).toBe(400)
      }
    },
  )

  it.skipIf(!available)('refuses malformed cursors (400) and cursors from elsewhere (410)', async () => {
    for (const bad of ['nonsense', 'j1.', 'j1.!!', '12']) {
      const reply = await ann.get(`/sync/changes?cursor=${encodeURIComponent(bad)}`)
      expect(reply.status).toBe(400)
      expect(reply.body.error.code).toBe('INVALID_REQUEST')
    }
    // A position beyond this journal's head (another server's cursor, a restored database).
    const beyond = await ann.get('/sync/changes?cursor=j1.zzzzzz')
    expect(beyond.status).toBe(410)
    expect(beyond.body.error.code).toBe('CURSOR_EXPIRED')
    expect((await ann.get('/sync/longpoll?cursor=j1.zzzzzz&timeout=1')).status).toBe(410)
    const socket = await open(ann, { cursor: 'j1.zzzzzz' })
    await socket.waitForClose()
    expect(socket.closed?.code).toBe(4410)
    expect(socket.messages).toEqual([
      { type: 'error', error: { code: 'CURSOR_EXPIRED', message: expect.any(String) } },
    ])
  })

  it.skipIf(!available)(
    'keeps both edits of one version: the second is a conflicted copy, both journaled',
    async () => {
      const name = `shared ${randomBytes(4).toString('hex')}.txt`
      const original = await ann.upload(name, Buffer.from('base'))
      const since = await latest(ann)
      const laptop = ann
      const phone = await secondDevice(ann)
      // Both start from version 1; the laptop completes first.
      const fromLaptop = await laptop.init(name, Buffer.from('laptop edit'), { baseVersion: 1 })
      const fromPhone = await phone.init(name, Buffer.from('phone edit'), { baseVersion: 1 })
      for (const [client, init, bytes] of [
        [laptop, fromLaptop, 'laptop edit'],
        [phone, fromPhone, 'phone edit'],
      ] as const) {
        for (const index of init.body.chunksNeeded)
          await client.putChunk(init.body.uploadId, index, Buffer.from(bytes))
      }
      const first = await laptop.post(`/upload/${fromLaptop.body.uploadId}/complete`)
      const second = await phone.post(`/upload/${fromPhone.body.uploadId}/complete`)
      expect(first.body).toMatchObject({ conflict: false, file: { id: original.id, version: 2 } })
      expect(second.body.conflict).toBe(true)
      expect(second.body.file.id).not.toBe(original.id)
      expect(second.body.file.name).toMatch(/\(conflicted copy \d{4}-\d{2}-\d{2}.*\)\.txt$/)
      expect((await ann.download(original.id)).body.toString()).toBe('laptop edit')
      expect((await ann.download(second.body.file.id)).body.toString()).toBe('phone edit')

      const { changes } = await readAll(ann, since)
      expect(changes.map((c) => [c.action, c.id, c.name])).toEqual([
        ['update', original.id, name],
        ['create', second.body.file.id, second.body.file.name],
      ])
    },
  )

  it.skipIf(!available)('takes names that differ only in case or Unicode form as one name', async () => {
    const tag = randomBytes(4).toString('hex')
    expect((await ann.post('/folders', { name: `Docs ${tag}` })).status).toBe(201)
    const clash = await ann.post('/folders', { name: `DOCS ${tag}` })
    expect(clash.status).toBe(409)
    expect(clash.body.error.code).toBe('NAME_TAKEN')
    // Uploading under another case is a new version of the same file, which keeps its name.
    const file = await ann.upload(`Readme ${tag}.txt`, Buffer.from('one'))
    const again = await ann.upload(`README ${tag}.TXT`, Buffer.from('two'))
    expect(again).toMatchObject({ id: file.id, name: `Readme ${tag}.txt`, version: 2 })
    // A name typed on macOS (NFD) is the name typed elsewhere (NFC).
    const nfc = `Café ${tag}`
    expect((await ann.post('/folders', { name: nfc })).status).toBe(201)
    expect((await ann.post('/folders', { name: nfc.normalize('NFD') })).status).toBe(409)
    expect((await ann.post('/folders', { name: nfc.toUpperCase() })).status).toBe(409)
    // A file may change the case of its own name.
    const renamed = await ann.patch(`/files/${file.id}`, { name: `README ${tag}.txt` })
    expect(renamed.status).toBe(200)
    expect(renamed.body.name).toBe(`README ${tag}.txt`)
  })

  it.skipIf(!available)(
    'lets one of two renames onto one name win and answers 409 to the other',
    async () => {
      const tag = randomBytes(4).toString('hex')
      const a = await ann.upload(`a ${tag}`, Buffer.from('a'))
      const b = await ann.upload(`b ${tag}`, Buffer.from('b'))
      const since = await latest(ann)
      const replies = await Promise.all([
        ann.patch(`/files/${a.id}`, { name: `target ${tag}` }),
        ann.patch(`/files/${b.id}`, { name: `TARGET ${tag}` }),
      ])
      expect(replies.map((r) => r.status).sort()).toEqual([200, 409])
      const winner = replies.find((r) => r.status === 200)?.body
      const { changes } = await readAll(ann, since)
      expect(changes.map((c) => [c.action, c.id, c.name])).toEqual([['move', winner.id, winner.name]])
      // The loser is untouched.
      const loser = winner.id === a.id ? b : a
      expect((await ann.get(`/files/${loser.id}`)).body.name).toBe(loser.name)
    },
  )

  it.skipIf(!available)(
    'orders a rename racing a delete: renamed then deleted, or not renamed at all',
    async () => {
      for (let round = 0; round < 5; round++) {
        const file = await ann.upload(`race ${randomBytes(4).toString('hex')}`, Buffer.from('r'))
        const since = await latest(ann)
        const [renamed, deleted] = await Promise.all([
          ann.patch(`/files/${file.id}`, { name: `${file.name} renamed` }),
          ann.delete(`/files/${file.id}`),
        ])
        expect(deleted.status).toBe(204)
        expect([200, 404]).toContain(renamed.status)
        const { changes } = await readAll(ann, since)
        const trashed = (await ann.get('/trash')).body.items.find(
          (item: { id: string }) => item.id === file.id,
        )
        if (renamed.status === 200) {
          expect(changes.map((c) => [c.action, c.name])).toEqual([
            ['move', `${file.name} renamed`],
            ['delete', `${file.name} renamed`],
          ])
          expect(trashed.name).toBe(`${file.name} renamed`)
        } else {
          expect(changes.map((c) => [c.action, c.name])).toEqual([['delete', file.name]])
          expect(trashed.name).toBe(file.name)
        }
      }
    },
  )

  it.skipIf(!available)(
    'authenticates the socket by query token, header or same-origin cookie only',
    async () => {
      const refused = async (options: Parameters<typeof SyncSocket.open>[1], client = ann) => {
        const error = (await SyncSocket.open(client, options).catch((e: unknown) => e)) as { status?: number }
        return error.status
      }
      expect(await refused({ auth: 'none' })).toBe(401)
      const stranger = new ApiClient(ann.api)
      stranger.token = randomBytes(32).toString('base64url')
      expect(await refused({}, stranger)).toBe(401)
      expect(await refused({ auth: 'none', headers: { authorization: 'Bearer nope' } })).toBe(401)

      const byHeader = await open(ann, { auth: 'header' })
      await byHeader.waitFor((s) => s.messages[0]?.type === 'hello')
      const cookie = `session=${ann.token}`
      const origin = new URL(ann.api).origin
      const sameSite = await open(ann, { auth: 'none', headers: { cookie, origin } })
      await sameSite.waitFor((s) => s.messages[0]?.type === 'hello')
      // A page of another origin riding on the user's cookie (cross-site WebSocket hijacking).
      expect(await refused({ auth: 'none', headers: { cookie, origin: 'https://evil.example' } })).toBe(401)
    },
  )
})

describe.each(DATABASES)('sync journal upkeep on %s', ({ name: backend, available }) => {
  let server: TestServer
  let ann: ApiClient
  beforeAll(async () => {
    if (!available) return
    server = await startTestServer(backend, {
      JOURNAL_MAX_ENTRIES: '100000',
      SYNC_PING_SECONDS: '1',
      SYNC_MAX_BUFFERED_KIB: '16',
      SYNC_SLOW_CLIENT_SECONDS: '1',
      // The clock moves a month ahead: the session must outlive it.
      SESSION_TTL_HOURS: String(24 * 365),
    })
    ann = await new ApiClient(server.api).register()
  })
  afterAll(async () => server?.stop())

  it.skipIf(!available)(
    'compacts the journal; a cursor before what is kept answers 410 everywhere',
    async () => {
      const start = await latest(ann)
      const socket = await SyncSocket.open(ann)
      onTestFinished(() => socket.close())
      for (let i = 0; i < 130; i++) await ann.post('/folders', { name: `c${i}` })
      await socket.waitForChanges(130)
      const middle = socket.changes[20]?.cursor as string
      const recent = socket.changes[100]?.cursor as string
      // Keep the newest 100 (as with JOURNAL_MAX_ENTRIES=100); nothing is old enough yet.
      expect(await server.services.meta.journal.compact(0, 100, 100)).toEqual({ removed: 30, more: false })
      expect(await server.services.sync.compact()).toBe(0)
      for (const cursor of [start, middle]) {
        const reply = await ann.get(`/sync/changes?cursor=${cursor}`)
        expect(reply.status).toBe(410)
        expect(reply.body.error.code).toBe('CURSOR_EXPIRED')
      }
      // From the start too: it is gone as well. A cursor inside what is kept still works.
      expect((await ann.get('/sync/changes')).status).toBe(410)
      expect((await readAll(ann, recent)).changes).toHaveLength(29)
      // The way back: the latest cursor, then list from scratch.
      const fresh = await latest(ann)
      expect((await ann.get(`/sync/changes?cursor=${fresh}`)).body).toEqual({
        changes: [],
        cursor: fresh,
        hasMore: false,
      })
      // By age: everything is older than the retention a month from now.
      server.advance(31 * 24 * 3600_000)
      expect(await server.services.sync.compact()).toBe(100)
      expect((await ann.get(`/sync/changes?cursor=${recent}`)).status).toBe(410)
      expect((await ann.get(`/sync/changes?cursor=${fresh}`)).status).toBe(200)
      const late = await SyncSocket.open(ann, { cursor: middle })
      await late.waitForClose()
      expect(late.closed?.code).toBe(4410)
      await socket.close()
    },
  )

  it.skipIf(!available)(
    'drops a client too slow to read, which then catches up from its cursor',
    async () => {
      const user = await new ApiClient(server.api).register()
      const text = async () => (await fetch(`${server.url}/metrics`)).text()
      const sockets = async () => Number(/^tessera_sync_sockets (\d+)/m.exec(await text())?.[1])
      const before = await sockets()
      const socket = await SyncSocket.open(user)
      await socket.waitFor((s) => s.messages[0]?.type === 'hello')
      const raw = (socket.ws as unknown as { _socket: { pause(): void; resume(): void } })._socket
      raw.pause()
      // Far more than fits in the socket buffers: 20,000 changes of about 600 bytes.
      const total = 20_000
      const entries = await server.services.meta.journal.append(
        Array.from({ length: total }, (_, i) => ({
          userId: user.user.id,
          change: {
            action: 'create' as const,
            kind: 'folder' as const,
            nodeId: `n${i}`,
            name: `${i} ${'x'.repeat(240)}`,
            parentId: null,
            version: null,
            size: 0,
            contentHash: null,
            actorId: user.user.id,
            at: Date.now(),
          },
        })),
      )
      server.services.hub.committed(entries)
      // The server gives up on it (closing, then cutting it when the close is not read either).
      const deadline = Date.now() + 15_000
      while ((await sockets()) > before && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100))
      expect(await sockets()).toBe(before)
      raw.resume()
      await socket.waitForClose(10_000)
      const received = socket.changes.length
      expect(received).toBeLessThan(total)
      // It goes on from the last change it received: the rest, exactly once, in order.
      const again = await SyncSocket.open(user, { cursor: socket.lastCursor })
      await again.waitForChanges(total - received, 15_000)
      const names = [...socket.changes, ...again.changes].map((c) => Number(c.name.split(' ')[0]))
      expect(names).toEqual(Array.from({ length: total }, (_, i) => i))
      await again.close()
    },
  )

  it.skipIf(!available)('drops a peer that stops answering pings, and ends sockets at logout', async () => {
    const metric = async () => {
      const text = await (await fetch(`${server.url}/metrics`)).text()
      return Number(/^tessera_sync_sockets (\d+)/m.exec(text)?.[1])
    }
    const before = await metric()
    const frozen = await SyncSocket.open(ann)
    await frozen.waitFor((s) => s.messages.length > 0)
    expect(await metric()).toBe(before + 1)
    // The client's process stops reading: no pong ever comes back.
    ;(frozen.ws as unknown as { _socket: { pause(): void } })._socket.pause()
    const deadline = Date.now() + 10_000
    while ((await metric()) !== before && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100))
    expect(await metric()).toBe(before)

    const device = await secondDevice(ann)
    const live = await SyncSocket.open(device)
    await live.waitFor((s) => s.messages.length > 0)
    expect((await device.post('/auth/logout')).status).toBe(204)
    await live.waitForClose(5000)
    expect(live.closed?.code).toBe(4401)
  })
})

import { randomBytes } from 'node:crypto'
import { beforeAll, describe, expect, it } from 'vitest'
import { ApiClient, type Reply } from '../helpers/api-client.js'
import { DATABASES } from '../helpers/databases.js'
import { serverWithUsers } from '../helpers/test-server.js'

/**
 * The permission matrix (issue 5): every route that names a file or folder, against every kind
 * of caller, with the exact status each must get. Each cell runs on a fresh scene, so a cell
 * that changes something (a delete, a rename) cannot decide the next one.
 *
 * The scene, all owned by `owner`:
 *   F/            shared: `editor` as editor, `viewer` and `other` as viewers
 *     S/          a subfolder
 *     X           a file with two versions
 *     T           a file in the owner's trash (deleted from F)
 *   Q/            private
 *     P           a private file
 */
type Actor = 'owner' | 'editor' | 'viewer' | 'stranger' | 'anonymous'
const ACTORS: readonly Actor[] = ['owner', 'editor', 'viewer', 'stranger', 'anonymous']

interface Scene {
  F: string
  S: string
  X: string
  T: string
  Q: string
  P: string
  /** A link of the owner's to X. */
  token: string
  /** An upload session of the owner's, complete but for `complete`. */
  uploadId: string
  users: Record<Exclude<Actor, 'anonymous'>, ApiClient> & { other: ApiClient }
}

type Cell = (as: ApiClient, scene: Scene) => Promise<Reply>

/** route, what it does, then the status for owner, editor, viewer, stranger, anonymous. */
const MATRIX: [string, Cell, [number, number, number, number, number]][] = [
  ['GET /files?folderId=F', (c, s) => c.get(`/files?folderId=${s.F}`), [200, 200, 200, 404, 401]],
  ['GET /folders/F', (c, s) => c.get(`/folders/${s.F}`), [200, 200, 200, 404, 401]],
  [
    'POST /folders in F',
    (c, s) => c.post('/folders', { name: 'new', parentId: s.F }),
    [201, 201, 403, 404, 401],
  ],
  [
    'POST /folders in Q',
    (c, s) => c.post('/folders', { name: 'new', parentId: s.Q }),
    [201, 404, 404, 404, 401],
  ],
  [
    'PATCH /folders/S rename',
    (c, s) => c.patch(`/folders/${s.S}`, { name: 'S2' }),
    [200, 200, 403, 404, 401],
  ],
  [
    'PATCH /folders/F rename',
    (c, s) => c.patch(`/folders/${s.F}`, { name: 'F2' }),
    [200, 403, 403, 404, 401],
  ],
  [
    'PATCH /folders/S into Q',
    (c, s) => c.patch(`/folders/${s.S}`, { parentId: s.Q }),
    [200, 404, 403, 404, 401],
  ],
  ['DELETE /folders/S', (c, s) => c.delete(`/folders/${s.S}`), [204, 204, 403, 404, 401]],
  ['DELETE /folders/F', (c, s) => c.delete(`/folders/${s.F}`), [204, 403, 403, 404, 401]],
  ['GET /files/X', (c, s) => c.get(`/files/${s.X}`), [200, 200, 200, 404, 401]],
  ['GET /files/X/download', (c, s) => c.get(`/files/${s.X}/download`), [200, 200, 200, 404, 401]],
  ['PATCH /files/X rename', (c, s) => c.patch(`/files/${s.X}`, { name: 'X2' }), [200, 200, 403, 404, 401]],
  [
    "PATCH /files/X to the caller's root",
    (c, s) => c.patch(`/files/${s.X}`, { folderId: null }),
    [200, 409, 403, 404, 401],
  ],
  ['PATCH /files/X into Q', (c, s) => c.patch(`/files/${s.X}`, { folderId: s.Q }), [200, 404, 403, 404, 401]],
  ['DELETE /files/X', (c, s) => c.delete(`/files/${s.X}`), [204, 204, 403, 404, 401]],
  ['GET /files/X/versions', (c, s) => c.get(`/files/${s.X}/versions`), [200, 200, 200, 404, 401]],
  [
    'GET /files/X/versions/1/download',
    (c, s) => c.get(`/files/${s.X}/versions/1/download`),
    [200, 200, 200, 404, 401],
  ],
  [
    'POST /files/X/versions/1/restore',
    (c, s) => c.post(`/files/${s.X}/versions/1/restore`),
    [200, 200, 403, 404, 401],
  ],
  [
    'POST /upload/init into F',
    (c, s) => c.init('up.txt', Buffer.from('new bytes'), { folderId: s.F }),
    [201, 201, 403, 404, 401],
  ],
  [
    'POST /upload/init into Q',
    (c, s) => c.init('up.txt', Buffer.from('new bytes'), { folderId: s.Q }),
    [201, 404, 404, 404, 401],
  ],
  [
    "POST /upload/:id/complete of the owner's session",
    (c, s) => c.post(`/upload/${s.uploadId}/complete`),
    [201, 404, 404, 404, 401],
  ],
  ['GET /files/P', (c, s) => c.get(`/files/${s.P}`), [200, 404, 404, 404, 401]],
  ['GET /files/P/download', (c, s) => c.get(`/files/${s.P}/download`), [200, 404, 404, 404, 401]],
  ['GET /folders/Q', (c, s) => c.get(`/folders/${s.Q}`), [200, 404, 404, 404, 401]],
  ['POST /files/X/share', (c, s) => c.post(`/files/${s.X}/share`, {}), [201, 403, 403, 404, 401]],
  ['POST /folders/F/share', (c, s) => c.post(`/folders/${s.F}/share`, {}), [201, 403, 403, 404, 401]],
  ['POST /files/P/share', (c, s) => c.post(`/files/${s.P}/share`, {}), [201, 404, 404, 404, 401]],
  ['DELETE /shares/<owner link>', (c, s) => c.delete(`/shares/${s.token}`), [204, 404, 404, 404, 401]],
  ['GET /folders/F/members', (c, s) => c.get(`/folders/${s.F}/members`), [200, 200, 200, 404, 401]],
  [
    'POST /folders/F/members',
    (c, s) => c.post(`/folders/${s.F}/members`, { email: s.users.stranger.user.email, role: 'viewer' }),
    [201, 403, 403, 404, 401],
  ],
  [
    'DELETE /folders/F/members/<other>',
    (c, s) => c.delete(`/folders/${s.F}/members/${s.users.other.user.id}`),
    [204, 403, 403, 404, 401],
  ],
  [
    'DELETE /folders/F/members/<self> (leave)',
    (c, s) => c.delete(`/folders/${s.F}/members/${c.user?.id ?? s.users.other.user.id}`),
    [404, 204, 204, 404, 401],
  ],
  ['POST /trash/T/restore', (c, s) => c.post(`/trash/${s.T}/restore`), [200, 404, 404, 404, 401]],
  ['DELETE /trash/T', (c, s) => c.delete(`/trash/${s.T}`), [204, 404, 404, 404, 401]],
]

describe.each(DATABASES)('the permission matrix on %s', ({ name: backend, available }) => {
  // Every scene leaves the owner an upload open (the matrix's pending session): hundreds of them.
  const setup = serverWithUsers(backend, available, 5, { UPLOAD_MAX_OPEN_SESSIONS: '100000' })
  let users: Scene['users']
  let anonymous: ApiClient
  beforeAll(() => {
    const [owner, editor, viewer, stranger, other] = setup.users as ApiClient[]
    users = { owner, editor, viewer, stranger, other } as Scene['users']
    anonymous = new ApiClient(setup.server?.api ?? '')
  })

  async function scene(): Promise<Scene> {
    const { owner } = users
    const tag = randomBytes(4).toString('hex')
    const F = (await owner.post('/folders', { name: `F ${tag}` })).body.id
    const S = (await owner.post('/folders', { name: 'S', parentId: F })).body.id
    const X = (await owner.upload('X', Buffer.from('version one'), { folderId: F })).id
    await owner.upload('X', Buffer.from('version two'), { folderId: F })
    const T = (await owner.upload('T', Buffer.from('trashed'), { folderId: F })).id
    expect((await owner.delete(`/files/${T}`)).status).toBe(204)
    const Q = (await owner.post('/folders', { name: `Q ${tag}` })).body.id
    const P = (await owner.upload('P', Buffer.from('private'), { folderId: Q })).id
    for (const [who, role] of [
      ['editor', 'editor'],
      ['viewer', 'viewer'],
      ['other', 'viewer'],
    ] as const) {
      const added = await owner.post(`/folders/${F}/members`, { email: users[who].user.email, role })
      expect(added.status).toBe(201)
    }
    const token = (await owner.post(`/files/${X}/share`, {})).body.token
    const bytes = Buffer.from(`pending ${tag}`)
    const init = await owner.init(`pending ${tag}`, bytes, { folderId: Q })
    await owner.putChunk(init.body.uploadId, 0, bytes)
    return { F, S, X, T, Q, P, token, uploadId: init.body.uploadId, users }
  }

  for (const [route, cell, expected] of MATRIX) {
    it.skipIf(!available)(route, async () => {
      const got: Record<string, number> = {}
      for (const actor of ACTORS) {
        const s = await scene()
        const client = actor === 'anonymous' ? anonymous : users[actor]
        got[actor] = (await cell(client, s)).status
      }
      expect(got).toEqual(Object.fromEntries(ACTORS.map((actor, i) => [actor, expected[i]])))
    })
  }

  it.skipIf(!available)(
    'answers an id in a body that names another user’s folder as 404, a malformed one as 400',
    async () => {
      const s = await scene()
      const { stranger } = s.users
      const mine = (await stranger.post('/folders', { name: `mine ${randomBytes(3).toString('hex')}` })).body
        .id
      const file = await stranger.upload(`f ${randomBytes(3).toString('hex')}`, Buffer.from('x'))
      for (const reply of [
        await stranger.post('/folders', { name: 'n', parentId: s.Q }),
        await stranger.patch(`/folders/${mine}`, { parentId: s.F }),
        await stranger.patch(`/files/${file.id}`, { folderId: s.F }),
        await stranger.init('n', Buffer.from('n'), { folderId: s.Q }),
      ]) {
        expect(reply.status).toBe(404)
      }
      for (const reply of [
        await stranger.post('/folders', { name: 'n', parentId: 'not an id' }),
        await stranger.patch(`/files/${file.id}`, { folderId: 42 }),
        await stranger.init('n', Buffer.from('n'), { folderId: ['x'] }),
      ]) {
        expect(reply.status).toBe(400)
      }
    },
  )
})

/**
 * The links' side of the matrix: each state a link can be in, against both anonymous routes
 * (for a file link, and for a folder link with a file inside and one outside), with the exact
 * status. A link grants nothing on the authenticated routes: that is the anonymous column above.
 */
describe.each(DATABASES)('the link matrix on %s', ({ name: backend, available }) => {
  const setup = serverWithUsers(backend, available, 1)
  const HOUR = 3_600_000

  type LinkState =
    | 'open'
    | 'password missing'
    | 'password wrong'
    | 'password right'
    | 'expired'
    | 'revoked'
    | 'item trashed'
    | 'unknown token'
  const STATES: readonly LinkState[] = [
    'open',
    'password missing',
    'password wrong',
    'password right',
    'expired',
    'revoked',
    'item trashed',
    'unknown token',
  ]
  /** view, download of the file link; view, download inside, download outside of the folder link. */
  const EXPECTED: Record<LinkState, [number, number, number, number, number]> = {
    open: [200, 200, 200, 200, 404],
    'password missing': [401, 401, 401, 401, 401],
    'password wrong': [401, 401, 401, 401, 401],
    'password right': [200, 200, 200, 200, 404],
    expired: [404, 404, 404, 404, 404],
    revoked: [404, 404, 404, 404, 404],
    'item trashed': [404, 404, 404, 404, 404],
    'unknown token': [404, 404, 404, 404, 404],
  }

  for (const state of STATES) {
    it.skipIf(!available)(`a link that is ${state}`, async () => {
      const owner = setup.users[0] as ApiClient
      const visitor = new ApiClient(owner.api)
      const tag = randomBytes(4).toString('hex')
      const folder = (await owner.post('/folders', { name: `linked ${tag}` })).body.id
      const inside = (await owner.upload('inside.txt', Buffer.from('in'), { folderId: folder })).id
      const outside = (await owner.upload(`outside ${tag}`, Buffer.from('out'))).id
      const file = (await owner.upload(`file ${tag}`, Buffer.from('file'))).id
      const withPassword = state.startsWith('password')
      const body = {
        ...(withPassword ? { password: 'right one' } : {}),
        ...(state === 'expired' ? { expiresAt: new Date(Date.now() + HOUR).toISOString() } : {}),
      }
      let fileToken = (await owner.post(`/files/${file}/share`, body)).body.token as string
      let folderToken = (await owner.post(`/folders/${folder}/share`, body)).body.token as string
      if (state === 'expired') setup.server.advance(2 * HOUR)
      if (state === 'revoked') {
        expect((await owner.delete(`/shares/${fileToken}`)).status).toBe(204)
        expect((await owner.delete(`/shares/${folderToken}`)).status).toBe(204)
      }
      if (state === 'item trashed') {
        expect((await owner.delete(`/files/${file}`)).status).toBe(204)
        expect((await owner.delete(`/folders/${folder}`)).status).toBe(204)
      }
      if (state === 'unknown token') {
        fileToken = randomBytes(32).toString('base64url')
        folderToken = randomBytes(32).toString('base64url')
      }
      const headers: Record<string, string> =
        state === 'password wrong'
          ? { 'x-share-password': 'wrong one' }
          : state === 'password right'
            ? { 'x-share-password': 'right one' }
            : {}
      const statuses = [
        (await visitor.get(`/share/${fileToken}`, headers)).status,
        (await visitor.get(`/share/${fileToken}/download`, headers)).status,
        (await visitor.get(`/share/${folderToken}`, headers)).status,
        (await visitor.get(`/share/${folderToken}/download?fileId=${inside}`, headers)).status,
        (await visitor.get(`/share/${folderToken}/download?fileId=${outside}`, headers)).status,
      ]
      expect(statuses).toEqual(EXPECTED[state])
    })
  }
})

import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { ApiClient, sha256 } from '../helpers/api-client.js'
import { DATABASES } from '../helpers/databases.js'
import { plainRequest, uploadRowsOf } from '../helpers/plain-requests.js'
import { startTestServer, type TestServer } from '../helpers/test-server.js'

/** One name of each class the name rules refuse (README, Names), with the rule's words. */
const REFUSED: Array<[string, RegExp]> = [
  ['line\nbreak.txt', /control characters/],
  ['tab\there', /control characters/],
  ['esc\u001b[2J', /control characters/],
  ['c1\u0085', /control characters/],
  ['invoice\u202efdp.exe', /bidirectional controls/],
  ['isolate\u2067x\u2069', /bidirectional controls/],
  ['mark\u200e', /bidirectional controls/],
  ['zero\u200bwidth', /zero-width/],
  ['\ufeffbom', /zero-width/],
  ['rep\u200cort.pdf', /zero-width/],
  ['rep\u2028ort.pdf', /line or paragraph separators/],
  ['soft\u00adhyphen', /invisible or formatting characters/],
  ['\u3164', /invisible or formatting characters/],
  ['\u2800', /invisible or formatting characters/],
  ['hidden\u{E0041}\u{E0042}tags', /invisible or formatting characters/],
  ['CONIN$', /device name on Windows/],
  ['clock$.txt', /device name on Windows/],
  ['CON', /device name on Windows/],
  ['nul.txt', /device name on Windows/],
  ['com1', /device name on Windows/],
  ['trailing.', /end with a dot or a space/],
  ['trailing ', /end with a dot or a space/],
]

describe.each(DATABASES)('name rules on %s', ({ name: backend, available }) => {
  let server: TestServer
  let ann: ApiClient
  beforeAll(async () => {
    if (!available) return
    server = await startTestServer(backend)
    ann = await new ApiClient(server.api).register()
  })
  afterAll(async () => server?.stop())

  const send = (method: string, path: string, body: unknown) =>
    plainRequest(server.api, method, path, ann.token, body)
  const namesIn = async (folderId: string) => {
    const reply = await send('GET', `/files?folderId=${folderId}`, undefined)
    expect(reply.status).toBe(200)
    return (reply.body.items as { name: string }[]).map((item) => item.name).sort()
  }

  it.skipIf(!available)(
    'answers 400 INVALID_NAME to create, upload, rename and move with such a name, and makes nothing',
    async () => {
      const box = (await ann.post('/folders', { name: 'box' })).body
      const other = (await ann.post('/folders', { name: 'other' })).body
      const folder = (await ann.post('/folders', { name: 'folder', parentId: box.id })).body
      const file = await ann.upload('file.txt', Buffer.from('x'), { folderId: box.id })
      const hash = sha256(Buffer.from('y'))
      const sessionsBefore = await uploadRowsOf(server, ann.user.id)

      for (const [name, rule] of REFUSED) {
        const attempts = {
          create: await send('POST', '/folders', { name, parentId: box.id }),
          upload: await send('POST', '/upload/init', {
            filename: name,
            folderId: box.id,
            size: 1,
            chunkHashes: [hash],
          }),
          renameFolder: await send('PATCH', `/folders/${folder.id}`, { name }),
          renameFile: await send('PATCH', `/files/${file.id}`, { name }),
          moveFolder: await send('PATCH', `/folders/${folder.id}`, { name, parentId: other.id }),
          moveFile: await send('PATCH', `/files/${file.id}`, { name, folderId: other.id }),
        }
        for (const [what, reply] of Object.entries(attempts)) {
          expect({ name, what, status: reply.status, code: reply.body.error?.code }).toEqual({
            name,
            what,
            status: 400,
            code: 'INVALID_NAME',
          })
          expect(reply.body.error.message).toMatch(rule)
        }
      }
      expect(await namesIn(box.id)).toEqual(['file.txt', 'folder'])
      expect(await namesIn(other.id)).toEqual([])
      expect(await uploadRowsOf(server, ann.user.id)).toEqual(sessionsBefore)
      // What only Windows clients must map, and joiners where writing needs them, are fine.
      for (const name of [
        'Meeting 10:30',
        'a<b>|c?*',
        'say "hi"',
        'back\\slash',
        'می\u200cخواهم',
        '👩\u200d💻',
        '❤\ufe0f',
        '🏴\u{E0067}\u{E0062}\u{E0073}\u{E0063}\u{E0074}\u{E007F}',
      ]) {
        const reply = await send('POST', '/folders', { name, parentId: other.id })
        expect({ name, status: reply.status }).toEqual({ name, status: 201 })
        expect(reply.body.name).toBe(name)
      }
    },
  )

  it.skipIf(!available)(
    'a conflicted copy and a trash restore of a 255-byte name get names within 255 bytes, renamable to themselves',
    async () => {
      for (const name of [`a.${'x'.repeat(253)}`, `${'漢'.repeat(84)}.md`, `${'😀'.repeat(63)}.gz`]) {
        expect(Buffer.byteLength(name)).toBe(255)
        const box = (
          await ann.post('/folders', { name: `long ${Buffer.byteLength(name)} ${name.slice(-2)}` })
        ).body
        const renameToItself = async (what: string, id: string, made: string) => {
          expect({ what, name, bytes: Buffer.byteLength(made) <= 255 }).toEqual({ what, name, bytes: true })
          expect(made).not.toBe(name)
          const renamed = await send('PATCH', `/files/${id}`, { name: made })
          expect({ what, status: renamed.status, name: renamed.body.name }).toEqual({
            what,
            status: 200,
            name: made,
          })
        }

        const first = await ann.upload(name, Buffer.from(`first ${name}`), { folderId: box.id })
        await ann.upload(name, Buffer.from(`laptop ${name}`), { folderId: box.id, baseVersion: 1 })
        const copy = await ann.upload(name, Buffer.from(`phone ${name}`), {
          folderId: box.id,
          baseVersion: 1,
        })
        expect(copy.id).not.toBe(first.id)
        await renameToItself('conflicted copy', copy.id, copy.name)

        expect((await send('DELETE', `/files/${first.id}`, undefined)).status).toBe(204)
        await ann.upload(name, Buffer.from(`in its place ${name}`), { folderId: box.id })
        const restored = await send('POST', `/trash/${first.id}/restore`, undefined)
        expect(restored.status).toBe(200)
        await renameToItself('trash restore', first.id, restored.body.name)
        expect(await namesIn(box.id)).toEqual([name, copy.name, restored.body.name].sort())
      }
    },
  )
})

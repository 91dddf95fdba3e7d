import { randomBytes } from 'node:crypto'
import { describe, expect, it } from 'vitest'
import type { ApiClient } from '../helpers/api-client.js'
import { DATABASES } from '../helpers/databases.js'
import { serverWithUsers } from '../helpers/test-server.js'

const EVIL = 'https://evil.example'
const PASSWORD = 'correct horse battery'

/** A state change ready to be sent once: its request, and how to tell whether it happened. */
interface Change {
  method: string
  path: string
  /** The session it is made with (the user's own, or a fresh one for logout). */
  token: string
  happened(): Promise<boolean>
}

describe.each(DATABASES)('cross-site requests with the session cookie (%s)', (listed) => {
  const { name: backend, available } = listed
  const ctx = serverWithUsers(backend, available, 1)
  const ann = () => ctx.users[0] as ApiClient

  /** One request with Node's fetch, carrying exactly the headers given (no bearer unless named). */
  const send = async (change: Change, headers: Record<string, string>) => {
    const response = await fetch(ctx.server.api + change.path, { method: change.method, headers })
    const text = await response.text()
    return { status: response.status, body: text ? JSON.parse(text) : undefined }
  }
  const byCookie = (change: Change, headers: Record<string, string> = {}) =>
    send(change, { cookie: `session=${change.token}`, ...headers })
  const byBearer = (change: Change, headers: Record<string, string> = {}) =>
    send(change, { authorization: `Bearer ${change.token}`, ...headers })

  const upload = (name: string, text: string) =>
    ann().upload(`${name}-${randomBytes(4).toString('hex')}.txt`, Buffer.from(text))

  const changes: Record<string, () => Promise<Change>> = {
    'version restore': async () => {
      const first = await upload('doc', 'one')
      await ann().upload(first.name, Buffer.from('two'))
      const count = async () => (await ann().get(`/files/${first.id}/versions`)).body.versions.length
      return {
        method: 'POST',
        path: `/files/${first.id}/versions/1/restore`,
        token: ann().token as string,
        happened: async () => (await count()) === 3,
      }
    },
    'trash restore': async () => {
      const file = await upload('trashed', 'bytes')
      expect((await ann().delete(`/files/${file.id}`)).status).toBe(204)
      return {
        method: 'POST',
        path: `/trash/${file.id}/restore`,
        token: ann().token as string,
        happened: async () => (await ann().get(`/files/${file.id}`)).status === 200,
      }
    },
    logout: async () => {
      const login = await ann().post('/auth/login', { email: ann().user.email, password: PASSWORD })
      const token = login.body.token as string
      return {
        method: 'POST',
        path: '/auth/logout',
        token,
        happened: async () =>
          (await ann().get('/auth/me', { authorization: `Bearer ${token}` })).status === 401,
      }
    },
    'share link creation': async () => {
      const file = await upload('shared', 'bytes')
      const links = async () =>
        (await ann().get('/shares')).body.shares.filter((link: any) => link.itemId === file.id).length
      return {
        method: 'POST',
        path: `/files/${file.id}/share`,
        token: ann().token as string,
        happened: async () => (await links()) === 1,
      }
    },
  }

  for (const [name, prepare] of Object.entries(changes)) {
    it.skipIf(!available)(
      `refuses ${name} by cookie from another origin (403, nothing done); takes it from this origin or by Bearer`,
      async () => {
        const change = await prepare()
        const refused = await byCookie(change, { origin: EVIL })
        expect(refused.status).toBe(403)
        expect(refused.body.error.code).toBe('FORBIDDEN')
        expect(await change.happened()).toBe(false)

        expect((await byCookie(change, { origin: ctx.server.url })).status).toBeLessThan(300)
        expect(await change.happened()).toBe(true)

        // Another site cannot make a browser send Authorization: Origin does not matter then.
        const byToken = await prepare()
        expect((await byBearer(byToken, { origin: EVIL })).status).toBeLessThan(300)
        expect(await byToken.happened()).toBe(true)
      },
    )
  }

  it.skipIf(!available)(
    'refuses a cookie state change without an Origin or Referer of this service; takes one with its Referer',
    async () => {
      const shareCreation = changes['share link creation'] as () => Promise<Change>
      const unconvincing: Array<Record<string, string>> = [
        {},
        { origin: 'null' },
        { referer: `${EVIL}/page` },
        // A browser's own word for a request from another site, whatever else it claims.
        { 'sec-fetch-site': 'cross-site', referer: `${ctx.server.url}/page` },
      ]
      for (const headers of unconvincing) {
        const change = await shareCreation()
        const reply = await byCookie(change, headers)
        expect(reply.status, JSON.stringify(headers)).toBe(403)
        expect(await change.happened()).toBe(false)
      }

      const change = await shareCreation()
      const reply = await byCookie(change, {
        referer: `${ctx.server.url}/files/`,
        'sec-fetch-site': 'same-origin',
      })
      expect(reply.status).toBe(201)
      expect(await change.happened()).toBe(true)

      // Reads change nothing: they are left alone, from any origin.
      const read = await fetch(`${ctx.server.api}/auth/me`, {
        headers: { cookie: `session=${ann().token}`, origin: EVIL },
      })
      expect(read.status).toBe(200)
    },
  )
})

import { describe, expect, it } from 'vitest'
import type { ApiClient } from '../helpers/api-client.js'
import { DATABASES } from '../helpers/databases.js'
import { plainRequest } from '../helpers/plain-requests.js'
import { serverWithUsers } from '../helpers/test-server.js'

const PASSWORD = 'correct horse battery'

/** Addresses with characters no real one holds: controls, formatting, invisibles, broken UTF-16. */
const HIDDEN = {
  NUL: 'ann\u0000@example.com',
  ESC: 'a\u001bnn@example.com',
  DEL: 'ann\u007f@example.com',
  'C1 NEL': 'ann\u0085@example.com',
  'C1 APC': 'a\u009fnn@example.com',
  'right-to-left override': 'ann\u202emoc.elpmaxe@example.com',
  'left-to-right embedding': '\u202aann@example.com',
  'first strong isolate': 'ann@\u2068example.com',
  'pop directional isolate': 'ann@example.com\u2069x',
  'zero-width space': 'a\u200bnn@example.com',
  'zero-width non-joiner': 'an\u200cn@example.com',
  'zero-width joiner': 'ann@exa\u200dmple.com',
  'byte order mark': 'an\ufeffn@example.com',
  'word joiner': 'ann\u2060@example.com',
  'soft hyphen': 'an\u00adn@example.com',
  'Hangul filler': 'ann\u3164@example.com',
  'lone surrogate': 'ann\ud800@example.com',
}

describe.each(DATABASES)('emails with hidden characters (%s)', ({ name: backend, available }) => {
  const ctx = serverWithUsers(backend, available, 1)

  it.skipIf(!available)(
    'refuses them at register (400) and answers them at login as a wrong password (401)',
    async () => {
      for (const [what, email] of Object.entries(HIDDEN)) {
        const registered = await plainRequest(ctx.server.api, 'POST', '/auth/register', undefined, {
          email,
          password: PASSWORD,
        })
        expect(registered.status, what).toBe(400)
        expect(registered.body.error.code, what).toBe('INVALID_REQUEST')
        expect(registered.body.error.message, what).toMatch(/control, formatting or invisible characters/)

        const login = await plainRequest(ctx.server.api, 'POST', '/auth/login', undefined, {
          email,
          password: PASSWORD,
        })
        expect(login.status, what).toBe(401)
        expect(login.body.error.code, what).toBe('BAD_CREDENTIALS')
      }
    },
  )

  it.skipIf(!available)('refuses them when a folder is shared by email (400)', async () => {
    const ann = ctx.users[0] as ApiClient
    const folder = await ann.post('/folders', { name: `shared-${Date.now()}` })
    expect(folder.status).toBe(201)
    for (const [what, email] of Object.entries(HIDDEN)) {
      const added = await plainRequest(
        ctx.server.api,
        'POST',
        `/folders/${folder.body.id}/members`,
        ann.token,
        {
          email,
          role: 'viewer',
        },
      )
      expect(added.status, what).toBe(400)
      expect(added.body.error.code, what).toBe('INVALID_REQUEST')
    }
  })
})

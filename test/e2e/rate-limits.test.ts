import { randomBytes } from 'node:crypto'
import { afterEach, describe, expect, it } from 'vitest'
import { DATABASES } from '../helpers/databases.js'
import { startTestServer, type TestServer } from '../helpers/test-server.js'

/** A header no one has ever been given: what a guesser sends for a fresh budget each time. */
const randomBearer = () => `Bearer ${randomBytes(32).toString('base64url')}`
const PASSWORD = 'correct horse battery'

interface Answer {
  status: number
  code: string | undefined
  retryAfter: string | null
  body: any
}

/** One request with Node's own fetch, as any client would send it. */
async function send(
  url: string,
  method: string,
  headers: Record<string, string> = {},
  body?: unknown,
): Promise<Answer> {
  const init: RequestInit = { method, headers: { ...headers } }
  if (body !== undefined) {
    init.body = JSON.stringify(body)
    ;(init.headers as Record<string, string>)['content-type'] = 'application/json'
  }
  const response = await fetch(url, init)
  const text = await response.text()
  const parsed =
    text && (response.headers.get('content-type') ?? '').includes('json') ? JSON.parse(text) : text
  return {
    status: response.status,
    code: parsed?.error?.code,
    retryAfter: response.headers.get('retry-after'),
    body: parsed,
  }
}

/** Splits answers into the 429s (each checked for the contract's shape) and the rest. */
function refusedAndServed(answers: Answer[]): { served: Answer[]; refused: Answer[] } {
  const refused = answers.filter((answer) => answer.status === 429)
  for (const answer of refused) {
    expect(answer.code).toBe('RATE_LIMITED')
    expect(Number(answer.retryAfter)).toBeGreaterThan(0)
    expect(Number(answer.retryAfter)).toBeLessThanOrEqual(60)
  }
  return { served: answers.filter((answer) => answer.status !== 429), refused }
}

describe.each(DATABASES)('rate limits key on what the server verified (%s)', (listed) => {
  const { name: backend, available } = listed
  let server: TestServer | undefined
  const start = async (env: Record<string, string>) => {
    server = await startTestServer(backend, env)
    return server
  }
  afterEach(async () => {
    await server?.stop()
    server = undefined
  })

  it.skipIf(!available)(
    'checks at most LOGIN_RATE_LIMIT_PER_MINUTE logins from one address, whatever bearer each carries',
    async () => {
      const { api } = await start({ LOGIN_RATE_LIMIT_PER_MINUTE: '5' })
      const answers: Answer[] = []
      for (let i = 0; i < 20; i++) {
        answers.push(
          await send(
            `${api}/auth/login`,
            'POST',
            { authorization: randomBearer() },
            {
              email: 'ann@example.com',
              password: `guess number ${i}`,
            },
          ),
        )
      }
      const { served, refused } = refusedAndServed(answers)
      expect(served.map((answer) => answer.status)).toEqual([401, 401, 401, 401, 401])
      expect(refused).toHaveLength(15)
    },
  )

  it.skipIf(!available)('limits registrations per address, whatever bearer each carries', async () => {
    const { api } = await start({ LOGIN_RATE_LIMIT_PER_MINUTE: '5' })
    const answers: Answer[] = []
    for (let i = 0; i < 20; i++) {
      answers.push(
        await send(
          `${api}/auth/register`,
          'POST',
          { authorization: randomBearer() },
          {
            email: `user-${i}@example.com`,
            password: PASSWORD,
          },
        ),
      )
    }
    const { served, refused } = refusedAndServed(answers)
    expect(served.map((answer) => answer.status)).toEqual([201, 201, 201, 201, 201])
    expect(refused).toHaveLength(15)
    // Logins and registrations share one budget per address: it is spent for both.
    const late = await send(
      `${api}/auth/login`,
      'POST',
      {},
      { email: 'user-19@example.com', password: PASSWORD },
    )
    expect(late.status).toBe(429)
  })

  it.skipIf(!available)(
    'limits the anonymous /share routes per address, whatever bearer each carries',
    async () => {
      const { api } = await start({ SHARE_RATE_LIMIT_PER_MINUTE: '5' })
      const answers: Answer[] = []
      for (let i = 0; i < 20; i++) {
        const token = randomBytes(32).toString('base64url')
        const path = i % 2 === 0 ? `/share/${token}` : `/share/${token}/download`
        answers.push(await send(api + path, 'GET', { authorization: randomBearer() }))
      }
      const { served, refused } = refusedAndServed(answers)
      expect(served.map((answer) => answer.status)).toEqual([404, 404, 404, 404, 404])
      expect(refused).toHaveLength(15)
    },
  )

  it.skipIf(!available)(
    "counts a signed-in user's requests over all their sessions, and not against other users",
    async () => {
      const { api } = await start({ RATE_LIMIT_PER_MINUTE: '5' })
      const register = async (email: string) =>
        (await send(`${api}/auth/register`, 'POST', {}, { email, password: PASSWORD })).body.token as string
      const annFirst = await register('ann@example.com')
      const annSecond = (
        await send(`${api}/auth/login`, 'POST', {}, { email: 'ann@example.com', password: PASSWORD })
      ).body.token as string
      const bob = await register('bob@example.com')

      const answers: Answer[] = []
      for (let i = 0; i < 20; i++) {
        // Two sessions of one account, and headers a client may invent (not trusted: no TRUST_PROXY).
        answers.push(
          await send(`${api}/auth/me`, 'GET', {
            authorization: `Bearer ${i % 2 === 0 ? annFirst : annSecond}`,
            'x-forwarded-for': `203.0.113.${i}`,
            cookie: `session=${randomBytes(32).toString('base64url')}`,
          }),
        )
      }
      const { served, refused } = refusedAndServed(answers)
      expect(served.map((answer) => answer.status)).toEqual([200, 200, 200, 200, 200])
      expect(refused).toHaveLength(15)

      // Ann's spent budget is hers: Bob, from the same address, is served.
      const bobs = await send(`${api}/auth/me`, 'GET', { authorization: `Bearer ${bob}` })
      expect(bobs.status).toBe(200)
      expect(bobs.body.user.email).toBe('bob@example.com')
    },
  )

  it.skipIf(!available)(
    'limits refused authentication and unknown routes per address, without blocking signed-in users',
    async () => {
      const { api, url } = await start({ RATE_LIMIT_PER_MINUTE: '5', ANON_RATE_LIMIT_PER_MINUTE: '5' })
      const ann = (
        await send(`${api}/auth/register`, 'POST', {}, { email: 'ann@example.com', password: PASSWORD })
      ).body.token as string

      const answers: Answer[] = []
      for (let i = 0; i < 20; i++) {
        const path = i % 2 === 0 ? `${api}/auth/me` : `${url}/api/v1/no-such-route-${i}`
        answers.push(await send(path, 'GET', { authorization: randomBearer() }))
      }
      const { served, refused } = refusedAndServed(answers)
      expect(served.map((answer) => answer.status)).toEqual([401, 404, 401, 404, 401])
      expect(refused).toHaveLength(15)

      // A valid session from the same address is counted as its user, not as the address.
      const anns = await send(`${api}/auth/me`, 'GET', { authorization: `Bearer ${ann}` })
      expect(anns.status).toBe(200)
    },
  )
})

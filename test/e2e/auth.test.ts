import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { ApiClient } from '../helpers/api-client.js'
import { DATABASES } from '../helpers/databases.js'
import { startTestServer, type TestServer } from '../helpers/test-server.js'

describe.each(DATABASES)('auth on %s', ({ name: backend, available }) => {
  let server: TestServer
  const client = () => new ApiClient(server.api)

  beforeAll(async () => {
    if (available) server = await startTestServer(backend)
  })
  afterAll(async () => server?.stop())

  it.skipIf(!available)('registers, answers /me by bearer token and by cookie, and logs out', async () => {
    const anon = client()
    const registered = await anon.post('/auth/register', {
      email: 'Ann@Example.COM',
      password: 'long enough pw',
    })
    expect(registered.status).toBe(201)
    expect(registered.body.user).toMatchObject({
      email: 'ann@example.com',
      usedBytes: 0,
      quotaBytes: 10 * 1024 ** 3,
    })
    expect(new Date(registered.body.user.createdAt).toISOString()).toBe(registered.body.user.createdAt)
    // At least 128 bits of randomness: 32 bytes in base64url are 43 characters.
    expect(registered.body.token).toMatch(/^[A-Za-z0-9_-]{43,}$/)
    const cookie = registered.headers.get('set-cookie') ?? ''
    expect(cookie).toMatch(/^session=/)
    expect(cookie).toMatch(/HttpOnly/i)
    expect(cookie).toMatch(/SameSite=Lax/i)

    const bearer = new ApiClient(server.api)
    bearer.token = registered.body.token
    expect((await bearer.get('/auth/me')).body.user.id).toBe(registered.body.user.id)

    const byCookie = await anon.get('/auth/me', { cookie: cookie.split(';')[0] as string })
    expect(byCookie.status).toBe(200)
    expect(byCookie.body.user.email).toBe('ann@example.com')

    expect((await bearer.post('/auth/logout')).status).toBe(204)
    const after = await bearer.get('/auth/me')
    expect(after.status).toBe(401)
    expect(after.body.error.code).toBe('UNAUTHORIZED')
  })

  it.skipIf(!available)('treats emails case-insensitively for uniqueness and login', async () => {
    await client().register('Bob@Example.com')
    const again = await client().post('/auth/register', {
      email: 'bob@EXAMPLE.com',
      password: 'another password',
    })
    expect(again.status).toBe(409)
    expect(again.body.error.code).toBe('EMAIL_TAKEN')
    const login = await client().post('/auth/login', {
      email: 'BOB@example.COM',
      password: 'correct horse battery',
    })
    expect(login.status).toBe(200)
    expect(login.body.token).not.toBe('')
  })

  it.skipIf(!available)('answers a wrong password and an unknown email identically', async () => {
    await client().register('carol@example.com')
    const wrong = await client().post('/auth/login', {
      email: 'carol@example.com',
      password: 'not the password',
    })
    const unknown = await client().post('/auth/login', {
      email: 'nobody@example.com',
      password: 'not the password',
    })
    expect(wrong.status).toBe(401)
    expect(unknown.status).toBe(401)
    expect(unknown.body).toEqual(wrong.body)
    expect(wrong.body.error.code).toBe('BAD_CREDENTIALS')
  })

  it.skipIf(!available)('rejects invalid registrations with 400 and a clear message', async () => {
    for (const body of [
      {},
      { email: 'not-an-email', password: 'long enough pw' },
      { email: 'x@example.com', password: 'short' },
      { email: 'x@example.com', password: 12345678 },
      { email: 'x@example.com', password: 'p'.repeat(2000) },
    ]) {
      const reply = await client().post('/auth/register', body)
      expect(reply.status, JSON.stringify(body)).toBe(400)
      expect(reply.body.error.code).toBe('INVALID_REQUEST')
      expect(reply.body.error.message).toEqual(expect.any(String))
    }
  })

  it.skipIf(!available)('rejects malformed JSON, non-object bodies and oversized bodies', async () => {
    const malformed = await client().post('/auth/register', '{"email": ')
    expect(malformed.status).toBe(400)
    expect(malformed.body.error.code).toBe('INVALID_JSON')
    const array = await client().post('/auth/register', [1, 2])
    expect(array.status).toBe(400)
    const huge = await client().post('/auth/register', {
      email: 'a@b.c',
      password: 'x'.repeat(2 * 1024 * 1024),
    })
    expect(huge.status).toBe(413)
    expect(huge.body.error.code).toBe('PAYLOAD_TOO_LARGE')
  })

  it.skipIf(!available)('refuses every authenticated route without a valid token', async () => {
    const anon = client()
    anon.token = 'A'.repeat(43)
    for (const [method, path] of [
      ['GET', '/auth/me'],
      ['POST', '/auth/logout'],
      ['GET', '/files'],
      ['POST', '/folders'],
      ['POST', '/upload/init'],
    ] as const) {
      const reply = await anon.request(method, path, method === 'POST' ? {} : undefined)
      expect(reply.status, `${method} ${path}`).toBe(401)
    }
  })
})

describe('login throttling', () => {
  let server: TestServer
  beforeAll(async () => {
    server = await startTestServer('sqlite', { LOGIN_RATE_LIMIT_PER_MINUTE: '5' })
  })
  afterAll(async () => server?.stop())

  it('answers 429 RATE_LIMITED once an address has tried too many logins', async () => {
    const statuses: number[] = []
    for (let i = 0; i < 7; i++) {
      const reply = await new ApiClient(server.api).post('/auth/login', {
        email: 'x@example.com',
        password: `guess ${i}`,
      })
      statuses.push(reply.status)
      if (reply.status === 429) expect(reply.body.error.code).toBe('RATE_LIMITED')
    }
    expect(statuses.slice(0, 5)).toEqual([401, 401, 401, 401, 401])
    expect(statuses.slice(5)).toEqual([429, 429])
  })
})

import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { ApiClient } from '../helpers/api-client.js'
import { DATABASES, postgresAvailable } from '../helpers/databases.js'
import { type ServerProcess, startServerProcess } from '../helpers/server-process.js'
import { startTestServer, type TestServer } from '../helpers/test-server.js'

const PASSWORD = 'correct horse battery staple'
const WINDOW_MINUTES = 15
const GUESSES = 300

const throttleEnv = (perAddress: number) => ({
  SHARE_PASSWORD_ATTEMPTS: '10',
  SHARE_PASSWORD_ATTEMPTS_PER_ADDRESS: String(perAddress),
  SHARE_PASSWORD_WINDOW_MINUTES: String(WINDOW_MINUTES),
  // Addresses come from X-Forwarded-For, so that one test can be several visitors.
  TRUST_PROXY: 'true',
  SHARE_RATE_LIMIT_PER_MINUTE: '100000',
  ANON_RATE_LIMIT_PER_MINUTE: '0',
})

/** A link visitor with nothing but Node's fetch: the status (and Retry-After) it is answered. */
async function openLink(api: string, token: string, password: string, address: string) {
  const response = await fetch(`${api}/share/${token}`, {
    headers: { 'x-share-password': password, 'x-forwarded-for': address },
  })
  const body = (await response.json()) as { error?: { code: string } }
  return { status: response.status, code: body.error?.code, retryAfter: response.headers.get('retry-after') }
}

/** `count` wrong passwords at once, the i-th from `addressOf(i)` to `apiOf(i)`; their answers. */
function guessAtOnce(
  count: number,
  token: string,
  apiOf: (i: number) => string,
  addressOf: (i: number) => string,
) {
  return Promise.all(
    Array.from({ length: count }, (_, i) => openLink(apiOf(i), token, `guess ${i}`, addressOf(i))),
  )
}

const tally = (answers: { status: number; code?: string }[]) => ({
  wrong: answers.filter((a) => a.status === 401 && a.code === 'SHARE_PASSWORD_REQUIRED').length,
  throttled: answers.filter((a) => a.status === 429 && a.code === 'RATE_LIMITED').length,
})

async function passwordLink(api: string): Promise<string> {
  const ann = await new ApiClient(api).register()
  const file = await ann.upload(`locked ${Date.now()}`, Buffer.from('locked'))
  const reply = await ann.post(`/files/${file.id}/share`, { password: PASSWORD })
  expect(reply.status).toBe(201)
  return reply.body.token
}

describe.each(DATABASES)('share link password throttle on %s', ({ name: backend, available }) => {
  let server: TestServer
  beforeAll(async () => {
    if (available) server = await startTestServer(backend, throttleEnv(4))
  })
  afterAll(async () => server?.stop())

  it.skipIf(!available)(
    'checks at most the limit of 300 concurrent wrong passwords, and one address only its share',
    async () => {
      const token = await passwordLink(server.api)
      const attacker = '203.0.113.66'
      const first = tally(
        await guessAtOnce(
          GUESSES,
          token,
          () => server.api,
          () => attacker,
        ),
      )
      expect(first).toEqual({ wrong: 4, throttled: GUESSES - 4 })
      // The attacker's share is used up, even for the right password...
      expect(await openLink(server.api, token, PASSWORD, attacker)).toMatchObject({ status: 429 })
      // ...but another visitor still gets in, and a right password costs the link nothing.
      for (let i = 0; i < 12; i++) {
        expect((await openLink(server.api, token, PASSWORD, '198.51.100.7')).status).toBe(200)
      }

      // Three more addresses use up the rest of the link's ten checks, and then nobody gets in.
      const more = tally(
        await guessAtOnce(
          GUESSES,
          token,
          () => server.api,
          (i) => `192.0.2.${i % 3}`,
        ),
      )
      expect(more).toEqual({ wrong: 6, throttled: GUESSES - 6 })
      const locked = await openLink(server.api, token, PASSWORD, '198.51.100.7')
      expect(locked).toMatchObject({ status: 429, code: 'RATE_LIMITED' })
      expect(Number(locked.retryAfter)).toBeGreaterThan(0)
      expect(Number(locked.retryAfter)).toBeLessThanOrEqual(WINDOW_MINUTES * 60)

      server.advance(WINDOW_MINUTES * 60_000 + 1000)
      expect((await openLink(server.api, token, PASSWORD, attacker)).status).toBe(200)
    },
  )
})

describe.skipIf(!postgresAvailable())('share link password throttle across API nodes', () => {
  let first: TestServer
  let second: ServerProcess
  beforeAll(async () => {
    first = await startTestServer('postgres', throttleEnv(10))
    // A second node: its own process, on the same database and chunk directory.
    second = await startServerProcess({ ...first.storeEnv, ...throttleEnv(10), LOG_LEVEL: 'silent' })
  })
  afterAll(async () => {
    await second?.stop()
    await first?.stop()
  })

  it('checks at most the limit of 300 wrong passwords sent to two nodes at once', async () => {
    const token = await passwordLink(first.api)
    const apis = [first.api, second.api]
    const answers = await guessAtOnce(
      GUESSES,
      token,
      (i) => apis[i % 2] as string,
      () => '203.0.113.66',
    )
    expect(tally(answers)).toEqual({ wrong: 10, throttled: GUESSES - 10 })
    for (const api of apis) {
      expect(await openLink(api, token, PASSWORD, '198.51.100.7')).toMatchObject({ status: 429 })
    }
  })
})

import { randomBytes } from 'node:crypto'
import { afterEach, describe, expect, it } from 'vitest'
import { ApiClient } from '../helpers/api-client.js'
import { DATABASES } from '../helpers/databases.js'
import { startTestServer, type TestServer } from '../helpers/test-server.js'
import { type UpgradeAnswer, upgrade } from '../helpers/upgrades.js'

/** Checks a 429 handshake answer: the contract's shape, with Retry-After. */
function expectRateLimited(answer: UpgradeAnswer): void {
  expect(answer.status).toBe(429)
  expect(answer.body).toEqual({ error: { code: 'RATE_LIMITED', message: expect.any(String) } })
  expect(Number(answer.retryAfter)).toBeGreaterThan(0)
}

/**
 * The sync socket's handshake counts against the same rate limits as every request (review
 * finding 7): a failed one against the address's unauthenticated budget, a valid one against its
 * user's, one to another path like a request for no route.
 */
describe.each(DATABASES)('sync socket handshakes and rate limits on %s', (listed) => {
  const { name: backend, available } = listed
  let server: TestServer | undefined
  afterEach(async () => {
    await server?.stop()
    server = undefined
  })
  const wsUrl = (api: string, query = '') => `${api}/sync/ws${query}`

  it.skipIf(!available)('answers 429 to made-up tokens once the address budget is spent', async () => {
    server = await startTestServer(backend, { ANON_RATE_LIMIT_PER_MINUTE: '5' })
    const answers: UpgradeAnswer[] = []
    for (let i = 0; i < 8; i++) {
      const guess = randomBytes(32).toString('base64url')
      answers.push(await upgrade(wsUrl(server.api, `?token=${guess}`)))
    }
    expect(answers.slice(0, 5).map((answer) => answer.status)).toEqual([401, 401, 401, 401, 401])
    for (const answer of answers.slice(5)) expectRateLimited(answer)
    // The same budget as plain requests: the address is refused there too.
    expect((await fetch(`${server.url}/healthz`)).status).toBe(429)
  })

  it.skipIf(!available)('counts handshakes to other paths like requests for no route', async () => {
    server = await startTestServer(backend, { ANON_RATE_LIMIT_PER_MINUTE: '3' })
    const answers: UpgradeAnswer[] = []
    for (let i = 0; i < 5; i++) answers.push(await upgrade(`${server.api}/sync/other${i}`))
    expect(answers.slice(0, 3).map((answer) => answer.status)).toEqual([404, 404, 404])
    for (const answer of answers.slice(3)) expectRateLimited(answer)
  })

  it.skipIf(!available)("counts a valid user's handshakes against RATE_LIMIT_PER_MINUTE", async () => {
    server = await startTestServer(backend, { RATE_LIMIT_PER_MINUTE: '4' })
    const ann = await new ApiClient(server.api).register()
    const answers: UpgradeAnswer[] = []
    for (let i = 0; i < 4; i++) answers.push(await upgrade(wsUrl(server.api, `?token=${ann.token}`)))
    expect(answers.map((answer) => answer.status)).toEqual([101, 101, 101, 101])
    expectRateLimited(await upgrade(wsUrl(server.api), { authorization: `Bearer ${ann.token}` }))
    // One budget over sockets and requests.
    expect((await ann.get('/sync/latest')).status).toBe(429)
    // Another user is not affected.
    const bob = await new ApiClient(server.api).register()
    expect((await upgrade(wsUrl(server.api, `?token=${bob.token}`))).status).toBe(101)
  })
})

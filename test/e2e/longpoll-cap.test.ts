import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { ApiClient } from '../helpers/api-client.js'
import { DATABASES } from '../helpers/databases.js'
import { startTestServer, type TestServer } from '../helpers/test-server.js'
import { waitFor } from '../helpers/wait-for.js'

const CAP = 20

/** Long polls are capped per user per node, like sync sockets (issue 10). */
describe.each(DATABASES)('long polls per user on %s', ({ name: backend, available }) => {
  let server: TestServer
  let ann: ApiClient
  let bob: ApiClient
  beforeAll(async () => {
    if (!available) return
    server = await startTestServer(backend, { SYNC_MAX_LONGPOLLS_PER_USER: String(CAP) })
    ann = await new ApiClient(server.api).register()
    bob = await new ApiClient(server.api).register()
  })
  afterAll(async () => server?.stop())

  const poll = async (client: ApiClient, timeout: number, signal?: AbortSignal) => {
    const { cursor } = (await client.get('/sync/latest')).body as { cursor: string }
    return fetch(`${server.api}/sync/longpoll?cursor=${encodeURIComponent(cursor)}&timeout=${timeout}`, {
      headers: { authorization: `Bearer ${client.token}` },
      signal,
    })
  }
  const watchers = () => server.services.hub.size.watchers

  it.skipIf(!available)(`answers a long poll beyond the cap of one user 429, and no other`, async () => {
    const hangUps = Array.from({ length: CAP }, () => new AbortController())
    const open = hangUps.map((hangUp) => poll(ann, 60, hangUp.signal).catch(() => null))
    await waitFor(() => watchers() === CAP)

    const extra = await poll(ann, 1)
    expect(extra.status).toBe(429)
    expect(await extra.json()).toEqual({
      error: { code: 'TOO_MANY_CONNECTIONS', message: expect.any(String) },
    })

    const other = await poll(bob, 1)
    expect(other.status).toBe(200)
    expect(await other.json()).toEqual({ changes: false })

    // One ends (its client hangs up): a new one is taken.
    hangUps[0]?.abort()
    await waitFor(() => watchers() === CAP - 1)
    const again = await poll(ann, 1)
    expect(again.status).toBe(200)

    for (const hangUp of hangUps) hangUp.abort()
    await Promise.all(open)
  })
})

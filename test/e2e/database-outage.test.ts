import { randomBytes } from 'node:crypto'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { ApiClient } from '../helpers/api-client.js'
import { createTestDatabase, postgresAvailable, type TestDatabase } from '../helpers/databases.js'
import { startTcpProxy, type TcpProxy } from '../helpers/tcp-proxy.js'
import { startTestServer, type TestServer } from '../helpers/test-server.js'
import { upgrade } from '../helpers/upgrades.js'

/**
 * PostgreSQL going away mid-run (issue 10): requests answer 503 with Retry-After, which clients
 * retry, not 500; once it is back, requests work again without a restart.
 */
describe.skipIf(!postgresAvailable())('PostgreSQL down mid-run', () => {
  let database: TestDatabase
  let proxy: TcpProxy
  let server: TestServer
  let ann: ApiClient
  beforeAll(async () => {
    database = await createTestDatabase()
    const target = new URL(database.url)
    proxy = await startTcpProxy({ host: target.hostname, port: Number(target.port || 5432) })
    // The 'sqlite' helper path makes no database of its own; DATABASE_URL puts the server on
    // PostgreSQL, through the proxy.
    server = await startTestServer('sqlite', {
      DATABASE_URL: proxy.url(database.url),
      DATABASE_CONNECT_TIMEOUT_SECONDS: '1',
      DATABASE_QUERY_TIMEOUT_SECONDS: '1',
    })
    ann = await new ApiClient(server.api).register()
  })
  afterAll(async () => {
    await server?.stop()
    await proxy?.close()
    await database?.drop()
  })

  it('answers 503 with Retry-After while it is down, and serves again once it is back', async () => {
    expect((await ann.get('/sync/latest')).status).toBe(200)

    proxy.cut()
    const signedIn = await ann.get('/sync/latest')
    const login = await fetch(`${server.api}/auth/login`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ email: ann.user.email, password: 'correct horse battery' }),
    })
    for (const reply of [
      { status: signedIn.status, headers: signedIn.headers, body: signedIn.body },
      { status: login.status, headers: login.headers, body: await login.json() },
    ]) {
      expect(reply.status).toBe(503)
      expect(reply.headers.get('retry-after')).toMatch(/^\d+$/)
      expect(reply.body).toMatchObject({
        error: { code: 'SERVICE_UNAVAILABLE', message: expect.any(String) },
      })
    }

    // /metrics still answers (tessera_ready is what operators look at now), and a sync
    // socket's handshake is refused 503 with Retry-After like a request.
    const metrics = await fetch(`${server.url}/metrics`)
    expect(metrics.status).toBe(200)
    expect(await metrics.text()).toMatch(/^tessera_ready\{check="metadata"\} 0$/m)
    const handshake = await upgrade(`${server.api}/sync/ws?token=${randomBytes(32).toString('base64url')}`)
    expect(handshake.status).toBe(503)
    expect(handshake.retryAfter).toMatch(/^\d+$/)
    expect(handshake.body).toMatchObject({ error: { code: 'SERVICE_UNAVAILABLE' } })

    proxy.restore()
    expect((await ann.get('/sync/latest')).status).toBe(200)
    expect((await ann.post('/folders', { name: 'after the outage' })).status).toBe(201)
  })

  it('answers 503 when the database stops answering (packets dropped), not a request that hangs', async () => {
    expect((await ann.get('/sync/latest')).status).toBe(200)
    proxy.blackhole()
    // Let the pool see its connections end, so that the request must open a new one.
    await new Promise((resolve) => setTimeout(resolve, 300))
    try {
      const reply = await ann.get('/sync/latest')
      expect(reply.status).toBe(503)
      expect(reply.headers.get('retry-after')).toMatch(/^\d+$/)
      expect(reply.body).toMatchObject({ error: { code: 'SERVICE_UNAVAILABLE' } })
    } finally {
      proxy.restore()
    }
    expect((await ann.get('/sync/latest')).status).toBe(200)
  })
  it('answers 503 when the database stops answering on a connection the pool already holds', async () => {
    expect((await ann.get('/sync/latest')).status).toBe(200)
    // The pool keeps that connection; frozen, it stays open and carries nothing more.
    const open = proxy.active
    proxy.freeze()
    try {
      const reply = await ann.get('/sync/latest')
      expect(reply.status).toBe(503)
      expect(reply.headers.get('retry-after')).toMatch(/^\d+$/)
      expect(reply.body).toMatchObject({ error: { code: 'SERVICE_UNAVAILABLE' } })
      // The connection that timed out is closed, not handed out again with a query in flight.
      for (let i = 0; i < 100 && proxy.active >= open; i++) await new Promise((r) => setTimeout(r, 20))
      expect(proxy.active).toBe(open - 1)
    } finally {
      proxy.restore()
    }
    expect((await ann.get('/sync/latest')).status).toBe(200)
    expect((await ann.post('/folders', { name: 'after the freeze' })).status).toBe(201)
  })
})

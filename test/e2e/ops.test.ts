import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { DATABASES } from '../helpers/databases.js'
import { startTestServer, type TestServer } from '../helpers/test-server.js'

describe.each(DATABASES)('operations endpoints on %s', ({ name: backend, available }) => {
  let server: TestServer
  beforeAll(async () => {
    if (available) server = await startTestServer(backend)
  })
  afterAll(async () => server?.stop())

  it.skipIf(!available)('reports health, readiness of each store, and Prometheus metrics', async () => {
    const health = await fetch(`${server.url}/healthz`)
    expect(health.status).toBe(200)
    const ready = await fetch(`${server.url}/readyz`)
    expect(ready.status).toBe(200)
    expect(await ready.json()).toEqual({
      status: 'ready',
      checks: { metadata: 'ok', blobs: 'ok', bus: 'ok' },
    })
    const metrics = await fetch(`${server.url}/metrics`)
    expect(metrics.headers.get('content-type')).toMatch(/^text\/plain/)
    expect(await metrics.text()).toContain('tessera_http_request_duration_seconds')
  })

  it.skipIf(!available)('echoes a request id, or makes one, on every answer', async () => {
    const given = await fetch(`${server.url}/healthz`, { headers: { 'x-request-id': 'trace-123' } })
    expect(given.headers.get('x-request-id')).toBe('trace-123')
    const made = await fetch(`${server.url}/api/v1/nope`)
    expect(made.status).toBe(404)
    expect(made.headers.get('x-request-id')).toMatch(/^[0-9a-f-]{36}$/)
    expect(await made.json()).toMatchObject({ error: { code: 'NOT_FOUND' } })
  })

  it.skipIf(!available)('says it is not ready when the metadata store stops answering', async () => {
    await server.services.meta.close()
    const ready = await fetch(`${server.url}/readyz`)
    expect(ready.status).toBe(503)
    const body = (await ready.json()) as { checks: Record<string, string> }
    expect(body.checks.metadata).toMatch(/^error/)
    expect(body.checks.blobs).toBe('ok')
  })
})

import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { ApiClient, sha256 } from '../helpers/api-client.js'
import { DATABASES } from '../helpers/databases.js'
import { plainRequest } from '../helpers/plain-requests.js'
import { startTestServer, type TestServer } from '../helpers/test-server.js'

/**
 * What a faulty `POST /upload/init` answers, as clients have always been answered: bodies are
 * now checked by a schema at the edge, and the answers (code and message, and which of two
 * faults is named) stayed those of the checks the service made before.
 */
describe.each(DATABASES)('faulty upload declarations on %s', ({ name: backend, available }) => {
  let server: TestServer
  let ann: ApiClient
  const hash = sha256(Buffer.from('a'))

  beforeAll(async () => {
    if (!available) return
    server = await startTestServer(backend, { GC_INTERVAL_SECONDS: '0' })
    ann = await new ApiClient(server.api).register()
  })
  afterAll(async () => server?.stop())

  const init = async (body: unknown) => {
    const reply = await plainRequest(server.api, 'POST', '/upload/init', ann.token, body)
    return { status: reply.status, code: reply.body?.error?.code, message: reply.body?.error?.message }
  }

  it.skipIf(!available)('a missing filename is a bad name, like a null one', async () => {
    const bad = { status: 400, code: 'INVALID_NAME', message: 'name must be a string' }
    expect(await init({ size: 1, chunkHashes: [hash] })).toEqual(bad)
    expect(await init({ filename: null, size: 1, chunkHashes: [hash] })).toEqual(bad)
  })

  it.skipIf(!available)('of two malformed fields, the one checked first before is named', async () => {
    const base = { filename: 'a.txt', size: 1, chunkHashes: [hash] }
    const messageOf = async (body: Record<string, unknown>) => (await init({ ...base, ...body })).message
    expect(await messageOf({ folderId: 42, chunkHashes: 42 })).toBe(
      'chunkHashes must be an array of SHA-256 hex strings',
    )
    expect(await messageOf({ folderId: 42, chunkSizes: 42 })).toBe('chunkSizes must be an array of integers')
    expect(await messageOf({ folderId: 42, baseVersion: 'x' })).toBe('baseVersion must be a positive integer')
  })
})

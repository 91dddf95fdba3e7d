import { afterEach, describe, expect, it } from 'vitest'
import { SYNC_CLOSE } from '../../src/http/sync-connection.js'
import { ApiClient } from '../helpers/api-client.js'
import { DATABASES } from '../helpers/databases.js'
import { SyncSocket } from '../helpers/sync-client.js'
import { startTestServer, type TestServer } from '../helpers/test-server.js'
import { upgrade } from '../helpers/upgrades.js'

/**
 * What a hostile client of the sync socket could do to the server or to the user's other
 * devices (second outside review): flood pings without reading the pongs, spend the user's
 * socket slots on handshakes the server refuses, or name a parameter twice.
 */
describe.each(DATABASES)('sync socket abuse on %s', ({ name: backend, available }) => {
  let server: TestServer | undefined
  afterEach(async () => {
    await server?.stop()
    server = undefined
  })
  const openSockets = async (target: TestServer) => {
    const text = await (await fetch(`${target.url}/metrics`)).text()
    return Number(/^tessera_sync_sockets (\d+)/m.exec(text)?.[1])
  }

  it.skipIf(!available)('closes a socket that floods pings, whose pongs would pile up unread', async () => {
    server = await startTestServer(backend)
    const ann = await new ApiClient(server.api).register()
    const socket = await SyncSocket.open(ann)
    await socket.waitFor((s) => s.messages[0]?.type === 'hello')
    // A heartbeat is one ping every few seconds; a client not reading its pongs while it sends
    // thousands would have them queue in the server's memory (the review: 745 MB from one socket).
    for (let i = 0; i < 5_000; i++) socket.ws.send('{"type":"ping"}')
    await socket.waitForClose(10_000)
    expect(socket.closed?.code).toBe(SYNC_CLOSE.tooManyPings)
    const pongs = socket.messages.filter((message) => message.type === 'pong').length
    expect(pongs).toBeGreaterThan(0)
    expect(pongs).toBeLessThan(5_000)
    for (let tries = 0; (await openSockets(server)) > 0 && tries < 50; tries++) {
      await new Promise((resolve) => setTimeout(resolve, 100))
    }
    expect(await openSockets(server)).toBe(0)
    // The user's other devices, and this one reconnecting, are unaffected.
    const again = await SyncSocket.open(ann)
    await again.waitFor((s) => s.messages[0]?.type === 'hello')
    again.ws.send('{"type":"ping"}')
    await again.waitFor((s) => s.messages.some((message) => message.type === 'pong'))
    await again.close()
  })

  it.skipIf(!available)(
    'handshakes the server refuses give their slot back, and are answered in the contract shape',
    async () => {
      server = await startTestServer(backend, { SYNC_MAX_SOCKETS_PER_USER: '3' })
      const ann = await new ApiClient(server.api).register()
      const url = `${server.api}/sync/ws?token=${ann.token}`
      for (let i = 0; i < 10; i++) {
        const refused = await upgrade(url, { 'sec-websocket-version': '99' })
        expect(refused.status).toBe(400)
        expect(refused.body).toEqual({ error: { code: 'INVALID_REQUEST', message: expect.any(String) } })
      }
      // All three of the user's slots are still there.
      const sockets = [await SyncSocket.open(ann), await SyncSocket.open(ann), await SyncSocket.open(ann)]
      expect(await openSockets(server)).toBe(3)
      for (const socket of sockets) await socket.close()
    },
  )

  it.skipIf(!available)('refuses a query parameter given twice instead of taking either', async () => {
    server = await startTestServer(backend)
    const ann = await new ApiClient(server.api).register()
    for (const query of [`?token=${ann.token}&token=made-up`, `?token=${ann.token}&cursor=0&cursor=1`]) {
      const answer = await upgrade(`${server.api}/sync/ws${query}`)
      expect(answer.status).toBe(400)
      expect(answer.body).toEqual({ error: { code: 'INVALID_REQUEST', message: expect.any(String) } })
    }
    expect((await upgrade(`${server.api}/sync/ws?token=${ann.token}`)).status).toBe(101)
  })
})

// The WebSocket reference: a bare `ws` server on loopback that sends every text message back
// at once, with its own clock reading appended (" <ms>"), so that the client can also split
// the round trip into its two one-way legs (process.hrtime is the machine's monotonic clock,
// the same in every process).
import { once } from 'node:events'
import { WebSocketServer } from 'ws'
import { serverMain } from '../lib/child.js'

interface Config {
  port: number
}

const clockMs = (): number => Number(process.hrtime.bigint()) / 1e6

serverMain<Config>(async ({ port }) => {
  const wss = new WebSocketServer({ port, host: '127.0.0.1' })
  wss.on('connection', (ws) => {
    ws.on('message', (data, isBinary) => {
      if (!isBinary) ws.send(`${data.toString()} ${clockMs()}`)
    })
    ws.on('error', () => ws.terminate())
  })
  await once(wss, 'listening')
  return {
    close: () =>
      new Promise<void>((resolve) => {
        for (const client of wss.clients) client.terminate()
        wss.close(() => resolve())
      }),
  }
})

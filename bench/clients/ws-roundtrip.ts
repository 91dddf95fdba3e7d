// The WebSocket reference's client: `count` round trips (after `warmup` unmeasured ones), one
// at a time, of a text message the size of a Tessera change message, to the echo server
// (bench/servers/ws-echo-server.ts). Besides each round trip it reports both one-way legs,
// from the server's clock reading in the echo: that both are positive and add up checks that
// the processes share a clock (process.hrtime: the machine's monotonic clock).
import WebSocket from 'ws'
import { clientMain } from '../lib/child.js'

interface Config {
  url: string
  count: number
  warmup: number
}

export interface WsRoundTripResult {
  messageBytes: number
  roundTripMs: number[]
  /** client → server and server → client, from the shared clock. */
  upMs: number[]
  downMs: number[]
}

const clockMs = (): number => Number(process.hrtime.bigint()) / 1e6

/** What a change message looks like on the sync socket (src/domain/journal.ts), about 400 bytes. */
function sampleMessage(n: number): string {
  return JSON.stringify({
    type: 'change',
    cursor: `j1.${n.toString(36)}`,
    userId: '0190f7a2-3c4d-7e8f-9a0b-1c2d3e4f5a6b',
    action: 'create',
    kind: 'folder',
    id: `0190f7a2-3c4d-7e8f-9a0b-${String(n).padStart(12, '0')}`,
    fileId: null,
    name: `bench folder ${n}`,
    folderId: null,
    version: null,
    size: 0,
    contentHash: null,
    actorId: '0190f7a2-3c4d-7e8f-9a0b-1c2d3e4f5a6b',
    timestamp: new Date().toISOString(),
  })
}

clientMain<Config, WsRoundTripResult>(async (config) => {
  const ws = new WebSocket(config.url)
  await new Promise<void>((resolve, reject) => {
    ws.once('open', () => resolve())
    ws.once('error', reject)
  })
  let waiting: ((text: string, at: number) => void) | undefined
  ws.on('message', (data) => {
    const at = clockMs()
    waiting?.(data.toString(), at)
  })
  const result: WsRoundTripResult = { messageBytes: 0, roundTripMs: [], upMs: [], downMs: [] }
  for (let n = 0; n < config.warmup + config.count; n++) {
    const message = sampleMessage(n)
    result.messageBytes = Buffer.byteLength(message)
    const reply = new Promise<{ text: string; at: number }>((resolve) => {
      waiting = (text, at) => resolve({ text, at })
    })
    const sent = clockMs()
    ws.send(message)
    const { text, at } = await reply
    const space = text.lastIndexOf(' ')
    if (text.slice(0, space) !== message) throw new Error(`echo ${n} does not match what was sent`)
    const serverAt = Number(text.slice(space + 1))
    if (n < config.warmup) continue
    result.roundTripMs.push(at - sent)
    result.upMs.push(serverAt - sent)
    result.downMs.push(at - serverAt)
  }
  ws.close()
  return result
})

// Device B of the sync benchmark: opens one sync socket per token (`/api/v1/sync/ws?token=`),
// waits for every `hello`, then writes `readyFile` (the benchmark starts the writer on it) and
// records each `change` that arrives with the shared clock's reading (process.hrtime, the
// machine's monotonic clock, the same in every process). It ends `settleMs` after every socket
// had `expectPerSocket` changes (so that extra ones would still be seen), or when nothing came
// for `idleMs`, or at `timeoutMs` after ready; the benchmark checks the counts.
import { readFile, writeFile } from 'node:fs/promises'
import WebSocket from 'ws'
import { forEachConcurrently } from '../lib/api.js'
import { clientMain } from '../lib/child.js'

interface Config {
  wsUrl: string
  tokensFile: string
  expectPerSocket: number
  readyFile: string
  connectConcurrency: number
  timeoutMs: number
  idleMs: number
  settleMs: number
}

/** [socket index, id, userId, action, arrival on the shared clock] */
export type Arrival = [number, string, string, string, number]

export interface SyncListenerResult {
  sockets: number
  connectMs: number
  /** Per socket, the user its hello named. */
  socketUsers: string[]
  arrivals: Arrival[]
  /** Why it ended: "complete", "idle" or "timeout". */
  ended: string
  /** Error messages received, and sockets closed before the end. */
  problems: string[]
}

const clockMs = (): number => Number(process.hrtime.bigint()) / 1e6

interface Change {
  type: string
  id?: string
  userId?: string
  action?: string
  error?: { code: string; message: string }
}

/** The sockets of one listener process and what they received. */
class Listener {
  readonly arrivals: Arrival[] = []
  readonly problems: string[] = []
  readonly counts: number[]
  readonly socketUsers: string[]
  readonly sockets: WebSocket[] = []
  /** Sockets that have had `expectPerSocket` changes. */
  satisfied = 0
  lastEventAt = clockMs()
  finishing = false
  onProgress: () => void = () => {}

  constructor(
    readonly config: Config,
    readonly tokens: readonly string[],
  ) {
    this.counts = new Array<number>(tokens.length).fill(0)
    this.socketUsers = new Array<string>(tokens.length).fill('')
  }

  /** Opens socket `index`; resolves on its hello. */
  open(index: number): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      const ws = new WebSocket(`${this.config.wsUrl}?token=${encodeURIComponent(this.tokens[index]!)}`)
      this.sockets[index] = ws
      const timer = setTimeout(() => reject(new Error(`socket ${index}: no hello in 30 s`)), 30_000)
      let greeted = false
      ws.on('message', (data) => {
        const at = clockMs()
        const message = JSON.parse(data.toString()) as Change
        if (message.type === 'hello') {
          greeted = true
          this.socketUsers[index] = String((message as { userId?: unknown }).userId ?? '')
          clearTimeout(timer)
          resolve()
        } else this.receive(index, message, at)
      })
      ws.once('unexpected-response', (_request, response) => {
        clearTimeout(timer)
        reject(new Error(`socket ${index}: handshake answered ${response.statusCode}`))
      })
      ws.on('error', (error) => {
        clearTimeout(timer)
        if (!greeted) reject(error)
        else this.problems.push(`socket ${index}: ${error.message}`)
      })
      ws.once('close', (code) => {
        clearTimeout(timer)
        if (!greeted) reject(new Error(`socket ${index}: closed (${code}) before its hello`))
        else if (!this.finishing) this.problems.push(`socket ${index}: closed by the server (${code})`)
      })
    })
  }

  receive(index: number, message: Change, at: number): void {
    if (message.type === 'change') {
      this.arrivals.push([index, message.id ?? '', message.userId ?? '', message.action ?? '', at])
      this.lastEventAt = at
      this.counts[index] = (this.counts[index] ?? 0) + 1
      if (this.counts[index] === this.config.expectPerSocket) this.satisfied++
      this.onProgress()
    } else if (message.type === 'error') {
      this.problems.push(`socket ${index}: ${message.error?.code}: ${message.error?.message}`)
    }
  }

  /** Resolves with why it ended: complete (then settled), idle or timeout. */
  end(readyAt: number): Promise<string> {
    const { config } = this
    return new Promise<string>((resolve) => {
      let settleTimer: NodeJS.Timeout | undefined
      const end = (why: string) => {
        clearInterval(poll)
        resolve(why)
      }
      const poll = setInterval(() => {
        const now = clockMs()
        if (settleTimer !== undefined) return
        if (now - readyAt > config.timeoutMs) end('timeout')
        else if (now - this.lastEventAt > config.idleMs) end('idle')
      }, 100)
      this.onProgress = () => {
        if (this.satisfied === this.tokens.length && settleTimer === undefined) {
          settleTimer = setTimeout(() => end('complete'), config.settleMs)
        }
      }
      this.onProgress()
    })
  }

  async closeAll(): Promise<void> {
    this.finishing = true
    await Promise.all(this.sockets.map(closeSocket))
  }
}

function closeSocket(ws: WebSocket): Promise<void> {
  return new Promise<void>((resolve) => {
    if (ws.readyState === WebSocket.CLOSED) return resolve()
    const timer = setTimeout(() => {
      ws.terminate()
      resolve()
    }, 2000)
    ws.once('close', () => {
      clearTimeout(timer)
      resolve()
    })
    ws.close(1000, 'benchmark done')
  })
}

clientMain<Config, SyncListenerResult>(async (config) => {
  const tokens = JSON.parse(await readFile(config.tokensFile, 'utf8')) as string[]
  const listener = new Listener(config, tokens)
  const connectStart = clockMs()
  await forEachConcurrently(tokens.length, config.connectConcurrency, (index) => listener.open(index))
  const connectMs = clockMs() - connectStart
  await writeFile(config.readyFile, JSON.stringify({ sockets: tokens.length, connectMs }))
  const readyAt = clockMs()
  listener.lastEventAt = readyAt
  const ended = await listener.end(readyAt)
  await listener.closeAll()
  const { socketUsers, arrivals, problems } = listener
  return { sockets: tokens.length, connectMs, socketUsers, arrivals, ended, problems }
})

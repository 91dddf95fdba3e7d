// Downloads a URL `repeat` times, one after another, reading and discarding the bytes
// (counted, and checked against the expected size).
import { Agent, request } from 'undici'
import { clientMain } from '../lib/child.js'
import { now } from '../lib/timing.js'

interface Config {
  url: string
  headers?: Record<string, string>
  expectBytes: number
  repeat: number
}

export interface DownloadResult {
  bytes: number
  ms: number[]
}

clientMain<Config, DownloadResult>(async (config) => {
  const dispatcher = new Agent({ connections: 1 })
  const times: number[] = []
  for (let run = 0; run < config.repeat; run++) {
    const start = now()
    const response = await request(config.url, { headers: config.headers, dispatcher })
    if (response.statusCode !== 200) {
      throw new Error(
        `GET ${config.url}: ${response.statusCode} ${(await response.body.text()).slice(0, 500)}`,
      )
    }
    let bytes = 0
    for await (const piece of response.body) bytes += (piece as Buffer).length
    times.push(now() - start)
    if (bytes !== config.expectBytes) throw new Error(`got ${bytes} bytes, expected ${config.expectBytes}`)
  }
  await dispatcher.close()
  return { bytes: config.expectBytes, ms: times }
})

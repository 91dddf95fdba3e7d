// A small HTTP load generator: `concurrency` GETs in flight over keep-alive connections for a
// warm-up and then a measured window; every answer must be 200 with the expected length.
import { Agent, request } from 'undici'
import { clientMain } from '../lib/child.js'
import { measureWindow } from '../lib/timing.js'

interface Config {
  url: string
  headers?: Record<string, string>
  concurrency: number
  warmupMs: number
  durationMs: number
  expectBytes: number
}

export interface LoadResult {
  requests: number
  seconds: number
  perSecond: number
  p50Ms: number
  p99Ms: number
}

clientMain<Config, LoadResult>(async (config) => {
  const dispatcher = new Agent({ connections: config.concurrency })
  const result = await measureWindow(config, async () => {
    const response = await request(config.url, { headers: config.headers, dispatcher })
    const body = await response.body.arrayBuffer()
    if (response.statusCode !== 200) {
      throw new Error(
        `GET ${config.url}: ${response.statusCode} ${Buffer.from(body).toString().slice(0, 300)}`,
      )
    }
    if (body.byteLength !== config.expectBytes) {
      throw new Error(`GET ${config.url}: ${body.byteLength} bytes, expected ${config.expectBytes}`)
    }
  })
  await dispatcher.close()
  const { count, seconds, perSecond, p50Ms, p99Ms } = result
  return { requests: count, seconds, perSecond, p50Ms, p99Ms }
})

// A small HTTP load generator: `concurrency` GETs in flight over keep-alive connections for a
// warm-up and then a measured window; every answer must be 200 with the expected length.
import { Agent, request } from 'undici'
import { clientMain } from '../lib/child.js'
import { now, percentile } from '../lib/timing.js'

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
  const start = now()
  const windowStart = start + config.warmupMs
  const windowEnd = windowStart + config.durationMs
  const latencies: number[] = []

  const lane = async () => {
    while (now() < windowEnd) {
      const began = now()
      const response = await request(config.url, { headers: config.headers, dispatcher })
      const body = await response.body.arrayBuffer()
      const ended = now()
      if (response.statusCode !== 200) {
        throw new Error(
          `GET ${config.url}: ${response.statusCode} ${Buffer.from(body).toString().slice(0, 300)}`,
        )
      }
      if (body.byteLength !== config.expectBytes) {
        throw new Error(`GET ${config.url}: ${body.byteLength} bytes, expected ${config.expectBytes}`)
      }
      if (ended >= windowStart && ended <= windowEnd) latencies.push(ended - began)
    }
  }
  await Promise.all(Array.from({ length: config.concurrency }, () => lane()))
  await dispatcher.close()
  const seconds = config.durationMs / 1000
  return {
    requests: latencies.length,
    seconds,
    perSecond: latencies.length / seconds,
    p50Ms: percentile(latencies, 50),
    p99Ms: percentile(latencies, 99),
  }
})

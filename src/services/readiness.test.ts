import { afterEach, describe, expect, it, vi } from 'vitest'
import { checkReadiness } from './readiness.js'

const answers = { ping: async () => {} }

describe('checkReadiness', () => {
  afterEach(() => vi.useRealTimers())

  it('answers null for each store that answers, and the error of one that fails', async () => {
    const down = new Error('connect ECONNREFUSED 10.0.0.5:5432')
    const report = await checkReadiness({
      meta: { ping: () => Promise.reject(down) },
      blobs: answers,
      bus: answers,
    })
    expect(report).toEqual({ metadata: down, blobs: null, bus: null })
  })

  it('fails a check that does not answer within its deadline', async () => {
    vi.useFakeTimers()
    const silent = { ping: () => new Promise<void>(() => {}) }
    const pending = checkReadiness({ meta: answers, blobs: answers, bus: silent })
    await vi.advanceTimersByTimeAsync(2_000)
    const report = await pending
    expect(report.bus?.message).toMatch(/no answer within 2000 ms/)
    expect([report.metadata, report.blobs]).toEqual([null, null])
  })
})

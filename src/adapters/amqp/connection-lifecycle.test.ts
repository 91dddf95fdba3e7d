import { describe, expect, it } from 'vitest'
import { reconnectDelay } from './connection-lifecycle.js'

const delays = { initial: 100, max: 5_000 }
/** Math.random's middle: no jitter either way. */
const middle = () => 0.5

describe('reconnectDelay', () => {
  it('doubles from `initial` with each failure and stops at `max`', () => {
    const waits = [0, 1, 2, 5, 6, 7, 60].map((failures) => reconnectDelay(failures, delays, middle))
    expect(waits).toEqual([100, 200, 400, 3_200, 5_000, 5_000, 5_000])
  })

  it('varies each wait by up to 20% either way', () => {
    expect(reconnectDelay(1, delays, () => 0)).toBeCloseTo(160)
    expect(reconnectDelay(1, delays, () => 1)).toBeCloseTo(240)
  })

  it('never waits past `max`, jitter included', () => {
    expect(reconnectDelay(10, delays, () => 1)).toBe(5_000)
    expect(reconnectDelay(10, delays, () => 0)).toBeCloseTo(4_000)
  })
})

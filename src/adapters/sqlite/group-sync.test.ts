import { describe, expect, it } from 'vitest'
import { GroupSync } from './group-sync.js'

/** A sync the test finishes by hand, counting how many ran. */
function manualSyncs() {
  const finishers: Array<(error?: Error) => void> = []
  const group = new GroupSync(
    () =>
      new Promise<void>((resolve, reject) => {
        finishers.push((error) => (error ? reject(error) : resolve()))
      }),
  )
  const settled = (promise: Promise<void>) => {
    const state = { done: false, error: undefined as unknown }
    promise.then(
      () => {
        state.done = true
      },
      (error: unknown) => {
        state.done = true
        state.error = error
      },
    )
    return state
  }
  const turn = () => new Promise((resolve) => setImmediate(resolve))
  return { group, finishers, settled, turn }
}

describe('GroupSync', () => {
  it('serves every caller that arrived while a sync ran with one more sync, started after it', async () => {
    const { group, finishers, settled, turn } = manualSyncs()
    const first = settled(group.sync())
    expect(finishers).toHaveLength(1)
    // Arrived while the first sync runs: their writes may postdate its start.
    const waiting = [settled(group.sync()), settled(group.sync()), settled(group.sync())]
    expect(finishers).toHaveLength(1)
    finishers[0]?.()
    await turn()
    expect(first.done).toBe(true)
    expect(waiting.some((state) => state.done)).toBe(false)
    expect(finishers).toHaveLength(2)
    finishers[1]?.()
    await turn()
    expect(waiting.every((state) => state.done && state.error === undefined)).toBe(true)
    expect(finishers).toHaveLength(2)
  })

  it('starts a fresh sync for a caller that arrives when none runs', async () => {
    const { group, finishers, turn } = manualSyncs()
    const first = group.sync()
    finishers[0]?.()
    await first
    await turn()
    void group.sync()
    expect(finishers).toHaveLength(2)
  })

  it('fails every later sync once one failed, never reporting success for bytes the kernel may have dropped', async () => {
    const { group, finishers, settled, turn } = manualSyncs()
    const first = settled(group.sync())
    const second = settled(group.sync())
    finishers[0]?.(Object.assign(new Error('EIO: i/o error, fdatasync'), { code: 'EIO' }))
    await turn()
    expect(first.error).toBeInstanceOf(Error)
    expect(second.error).toBe(first.error)
    // The waiting caller was not given a second sync that might have "succeeded".
    expect(finishers).toHaveLength(1)
    await expect(group.sync()).rejects.toThrow(/could not be made durable/)
    expect(group.failure?.cause).toMatchObject({ code: 'EIO' })
    expect(finishers).toHaveLength(1)
  })
})

import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { expectAppError } from '../../test/helpers/app-error.js'
import { openServiceFixture, type ServiceFixture } from '../../test/helpers/service-fixture.js'
import type { User } from '../domain/model.js'

describe('SyncService', () => {
  let fx: ServiceFixture
  let user: User
  beforeEach(async () => {
    fx = await openServiceFixture()
    user = await fx.user()
  })
  afterEach(() => fx.close())

  const makeFolders = async (count: number) => {
    for (let i = 0; i < count; i++) await fx.services.folders.create(user, { name: `f${i}` })
  }

  it('pages through the journal from a cursor, in order', async () => {
    const start = await fx.services.sync.latest(user)
    await makeFolders(5)
    const first = await fx.services.sync.changes(user, { after: start, limit: 3 })
    expect(first.entries.map((e) => e.name)).toEqual(['f0', 'f1', 'f2'])
    expect(first.hasMore).toBe(true)
    const rest = await fx.services.sync.changes(user, { after: first.cursor, limit: 3 })
    expect([rest.entries.map((e) => e.name), rest.hasMore]).toEqual([['f3', 'f4'], false])
    expect(rest.cursor).toBe(await fx.services.sync.latest(user))
    // Nothing new: the same cursor back, and no more.
    expect(await fx.services.sync.changes(user, { after: rest.cursor, limit: 3 })).toEqual({
      entries: [],
      cursor: rest.cursor,
      hasMore: false,
    })
  })

  it('answers CURSOR_EXPIRED for a cursor compaction overtook, or one beyond the head', async () => {
    const start = await fx.services.sync.latest(user)
    await makeFolders(5)
    const head = await fx.services.sync.latest(user)
    await fx.meta.journal.compact(0, 2, 100)
    for (const after of [start, head + 1]) {
      await expect(fx.services.sync.changes(user, { after, limit: 10 })).rejects.toMatchObject({
        code: 'CURSOR_EXPIRED',
      })
      await expect(fx.services.sync.startingPosition(user, after)).rejects.toMatchObject({
        code: 'CURSOR_EXPIRED',
      })
    }
    expect((await fx.services.sync.changes(user, { after: head - 2, limit: 10 })).entries).toHaveLength(2)
    // A live feed without a cursor starts at the newest position.
    expect(await fx.services.sync.startingPosition(user, undefined)).toBe(head)
  })

  it('follows a live feed page by page, and refuses one compaction overtook while it was open', async () => {
    const start = await fx.services.sync.startingPosition(user, undefined)
    await makeFolders(5)
    const first = await fx.services.sync.follow(user, { after: start, limit: 3 })
    expect([first.entries.map((e) => e.name), first.hasMore]).toEqual([['f0', 'f1', 'f2'], true])
    const rest = await fx.services.sync.follow(user, { after: first.cursor, limit: 3 })
    expect([rest.entries.map((e) => e.name), rest.hasMore]).toEqual([['f3', 'f4'], false])
    // Compaction drops what the feed has not read yet: its next page would start past a hole.
    await fx.services.folders.create(user, { name: 'late' })
    await fx.services.folders.create(user, { name: 'later' })
    await fx.meta.journal.compact(0, 1, 100)
    await expectAppError(fx.services.sync.follow(user, { after: rest.cursor, limit: 3 }), 'CURSOR_EXPIRED')
  })

  it('wakes a long poll when a change commits, and times out when none does', async () => {
    const after = await fx.services.sync.latest(user)
    expect(await fx.services.sync.waitForChange(user, { after, timeoutMs: 50 })).toBe(false)

    const started = Date.now()
    const waiting = fx.services.sync.waitForChange(user, { after, timeoutMs: 30_000 })
    await new Promise((resolve) => setTimeout(resolve, 50))
    await makeFolders(1)
    expect(await waiting).toBe(true)
    expect(Date.now() - started).toBeLessThan(10_000)
    // Something after the cursor already: at once.
    expect(await fx.services.sync.waitForChange(user, { after, timeoutMs: 30_000 })).toBe(true)
  })

  it('ends a long poll when the client goes away', async () => {
    const after = await fx.services.sync.latest(user)
    const gone = new AbortController()
    const waiting = fx.services.sync.waitForChange(user, { after, timeoutMs: 30_000, signal: gone.signal })
    await new Promise((resolve) => setTimeout(resolve, 50))
    gone.abort()
    expect(await waiting).toBe(false)
  })
})

import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import { openServiceFixture } from '../../test/helpers/service-fixture.js'
import { waitFor } from '../../test/helpers/wait-for.js'
import { LocalBroker, LocalEventBus } from '../adapters/local-bus/local-event-bus.js'
import type { JournalEntry } from '../domain/journal.js'
import { SyncHub, type SyncWatcher } from './sync-hub.js'

/** A watcher that counts its wakes, and what it saw of `closed` at each. */
function counter(hub?: SyncHub) {
  const watcher = {
    wakes: 0,
    sawClosed: [] as boolean[],
    wake() {
      watcher.wakes++
      if (hub) watcher.sawClosed.push(hub.closed)
    },
  }
  return watcher
}

let seq = 0
const entry = (userId: string): JournalEntry => ({
  userId,
  seq: ++seq,
  action: 'create',
  kind: 'folder',
  nodeId: `node-${seq}`,
  name: `f${seq}`,
  parentId: null,
  version: null,
  size: 0,
  contentHash: null,
  actorId: userId,
  at: Date.UTC(2030, 0, 1),
})

/** Lets what the local broker delivers (setImmediate) arrive, so that its absence means something. */
const settle = () => new Promise((resolve) => setTimeout(resolve, 30))

describe('SyncHub', () => {
  /** Two nodes on one broker, as two API processes on one RabbitMQ. */
  let here: SyncHub
  let there: SyncHub
  let buses: LocalEventBus[]
  let errors: { error: unknown; context: string }[]
  beforeEach(() => {
    const broker = new LocalBroker()
    errors = []
    const onError = (error: unknown, context: string) => errors.push({ error, context })
    buses = ['here', 'there'].map((nodeId) => new LocalEventBus({ nodeId, broker, onError }))
    here = new SyncHub(buses[0] as LocalEventBus, onError)
    there = new SyncHub(buses[1] as LocalEventBus, onError)
  })
  afterEach(async () => {
    await Promise.all([here.close(), there.close()])
    await Promise.all(buses.map((bus) => bus.close()))
  })

  it('wakes this node’s watchers of the users a commit concerns, once per commit, and no others', async () => {
    const [ann1, ann2, bob] = [counter(), counter(), counter()]
    await here.watch('ann', ann1)
    await here.watch('ann', ann2)
    await here.watch('bob', bob)
    here.committed([entry('ann'), entry('ann'), entry('carol')])
    expect([ann1.wakes, ann2.wakes, bob.wakes]).toEqual([1, 1, 0])
    expect(here.size).toEqual({ users: 2, watchers: 3 })
  })

  it('wakes the watchers on another node through the bus, for the users they watch only', async () => {
    const annThere = counter()
    const bobThere = counter()
    const annHere = counter()
    await there.watch('ann', annThere)
    await there.watch('bob', bobThere)
    await here.watch('ann', annHere)
    here.committed([entry('ann')])
    expect(annHere.wakes).toBe(1)
    await waitFor(() => annThere.wakes === 1, 'the change to reach the other node')
    await settle()
    // Once each: the publishing node is not woken again by its own event.
    expect([annThere.wakes, bobThere.wakes, annHere.wakes]).toEqual([1, 0, 1])
  })

  it('stops waking a watcher once removed, and stops following the user when it was the last', async () => {
    const first = counter()
    const second = counter()
    const unfollow = vi.spyOn(buses[1] as LocalEventBus, 'unfollow')
    const removeFirst = await there.watch('ann', first)
    const removeSecond = await there.watch('ann', second)
    removeFirst()
    removeFirst()
    here.committed([entry('ann')])
    await waitFor(() => second.wakes === 1, 'the change to reach the remaining watcher')
    expect(first.wakes).toBe(0)
    expect(there.size).toEqual({ users: 1, watchers: 1 })

    expect(unfollow).not.toHaveBeenCalled()
    removeSecond()
    expect(there.size).toEqual({ users: 0, watchers: 0 })
    await waitFor(() => unfollow.mock.calls.length > 0, 'the user to be unfollowed')
    expect(unfollow.mock.calls).toEqual([['ann']])
    here.committed([entry('ann')])
    there.committed([entry('ann')])
    await settle()
    expect([first.wakes, second.wakes]).toEqual([0, 1])
  })

  it('wakes every watcher of every user on resync, since deliveries may have been lost', async () => {
    const watchers = [counter(), counter(), counter()]
    await here.watch('ann', watchers[0] as SyncWatcher)
    await here.watch('ann', watchers[1] as SyncWatcher)
    await here.watch('bob', watchers[2] as SyncWatcher)
    here.resync()
    expect(watchers.map((w) => w.wakes)).toEqual([1, 1, 1])
  })

  it('keeps waking the others when a watcher throws, and reports what it threw', async () => {
    const after = counter()
    await here.watch('ann', {
      wake() {
        throw new Error('socket gone')
      },
    })
    await here.watch('ann', after)
    here.committed([entry('ann')])
    expect(after.wakes).toBe(1)
    expect(errors).toMatchObject([{ context: 'waking a sync watcher', error: { message: 'socket gone' } }])
  })

  it('on close, wakes every watcher one last time with `closed` true, and publishes no more', async () => {
    const annHere = counter(here)
    const annThere = counter(there)
    await here.watch('ann', annHere)
    await there.watch('ann', annThere)
    expect(here.closed).toBe(false)
    await here.close()
    expect(here.closed).toBe(true)
    expect(annHere.sawClosed).toEqual([true])

    here.committed([entry('ann')])
    await settle()
    expect(annThere.wakes).toBe(0)
    expect(errors).toEqual([])
  })
})

describe('SyncHub as the services wire it', () => {
  it('wakes a watcher of a user when one of their changes commits', async () => {
    const fx = await openServiceFixture()
    try {
      const ann = await fx.user('ann')
      const bob = await fx.user('bob')
      const [annWatcher, bobWatcher] = [counter(), counter()]
      await fx.services.hub.watch(ann.id, annWatcher)
      await fx.services.hub.watch(bob.id, bobWatcher)
      await fx.services.folders.create(ann, { name: 'docs' })
      expect([annWatcher.wakes, bobWatcher.wakes]).toEqual([1, 0])
    } finally {
      await fx.close()
    }
  })
})

import { randomUUID } from 'node:crypto'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import type { ChangeEvent, EventBus, EventBusListener } from '../../src/ports/event-bus.js'
import { waitFor } from '../helpers/wait-for.js'

/** Three nodes on one broker. `cleanup` closes whatever the test left open. */
export interface EventBusNodes {
  a: EventBus
  b: EventBus
  c: EventBus
  cleanup(): Promise<void>
}

/** A listener that keeps everything it was given. */
export class RecordingListener implements EventBusListener {
  readonly changes: ChangeEvent[] = []
  resyncs = 0

  change(event: ChangeEvent): void {
    this.changes.push(event)
  }

  resync(): void {
    this.resyncs += 1
  }

  /** The payloads delivered for one user, in delivery order. */
  of(userId: string): Array<Readonly<Record<string, unknown>>> {
    return this.changes.filter((event) => event.userId === userId).map((event) => event.payload)
  }
}

/** Random, so suites sharing one broker (parallel files, the sync e2e tests) never meet. */
export const newUserId = (): string => randomUUID()

let cursor = 0

/** A change event shaped like the contract's change message, with a few awkward values in it. */
export function changeEvent(userId: string, extra: Record<string, unknown> = {}): ChangeEvent {
  cursor += 1
  return {
    userId,
    payload: {
      type: 'change',
      cursor,
      userId,
      fileId: randomUUID(),
      folderId: null,
      action: 'update',
      name: 'Ünïcødé ✓ "quoted" \\ name.txt',
      nested: { sizes: [0, 1, 2 ** 40], empty: {} },
      ...extra,
    },
  }
}

/** The payloads that are not markers (see `eventBusContract`). */
export const unmarked = (payloads: ReadonlyArray<Readonly<Record<string, unknown>>>) =>
  payloads.filter((payload) => payload.marker !== true)

/**
 * What every EventBus promises (src/ports/event-bus.ts). `makeNodes` gives three fresh nodes
 * sharing one broker, each ready (started, if the adapter needs it).
 *
 * "Does not receive" is shown with a marker: one broker queue per node delivers in order, so an
 * unwanted event published before a marker would have arrived before it.
 */
export function eventBusContract(makeNodes: () => Promise<EventBusNodes>): void {
  let nodes: EventBusNodes
  let heard: { a: RecordingListener; b: RecordingListener; c: RecordingListener }

  beforeEach(async () => {
    nodes = await makeNodes()
    heard = { a: new RecordingListener(), b: new RecordingListener(), c: new RecordingListener() }
    nodes.a.listen(heard.a)
    nodes.b.listen(heard.b)
    nodes.c.listen(heard.c)
  })
  afterEach(async () => {
    await nodes.cleanup()
  })

  /** Publishes a marker for `userId` from `from` and waits until `listener` has it. */
  const marker = async (from: EventBus, listener: RecordingListener, userId: string) => {
    const event = changeEvent(userId, { marker: true })
    await from.publish([event])
    await waitFor(() => listener.changes.some((e) => e.payload.cursor === event.payload.cursor), 'the marker')
  }

  describe('delivery', () => {
    it('delivers an event to a node that follows its user, payload intact', async () => {
      const user = newUserId()
      await nodes.b.follow(user)
      const event = changeEvent(user)
      await nodes.a.publish([event])
      await waitFor(() => heard.b.changes.length === 1, "b's delivery")
      expect(heard.b.changes).toEqual([event])
    })

    it("delivers one user's events in publish order", async () => {
      const user = newUserId()
      await nodes.b.follow(user)
      const batch = Array.from({ length: 20 }, () => changeEvent(user))
      await nodes.a.publish(batch.slice(0, 10))
      for (const event of batch.slice(10)) await nodes.a.publish([event])
      await waitFor(() => heard.b.changes.length === 20, 'all 20 events')
      expect(heard.b.of(user)).toEqual(batch.map((event) => event.payload))
    })

    it('never calls the listener inside publish', async () => {
      const user = newUserId()
      await nodes.b.follow(user)
      let publishing = false
      const calledDuringPublish: boolean[] = []
      nodes.b.listen({ change: () => calledDuringPublish.push(publishing), resync: () => {} })
      publishing = true
      const published = nodes.a.publish([changeEvent(user)])
      publishing = false
      await published
      await waitFor(() => calledDuringPublish.length === 1, "b's delivery")
      expect(calledDuringPublish).toEqual([false])
    })

    it('does not deliver to the publishing node, even when it follows the user', async () => {
      const user = newUserId()
      await nodes.a.follow(user)
      await nodes.b.follow(user)
      await nodes.a.publish([changeEvent(user)])
      await waitFor(() => heard.b.changes.length === 1, "b's delivery")
      await marker(nodes.b, heard.a, user)
      expect(unmarked(heard.a.of(user))).toEqual([])
    })

    it('delivers to every node that follows the user, and only to those', async () => {
      const user = newUserId()
      const other = newUserId()
      await nodes.b.follow(user)
      await nodes.c.follow(user)
      await nodes.b.follow(other)
      const event = changeEvent(user)
      await nodes.a.publish([event])
      await waitFor(() => heard.b.changes.length === 1 && heard.c.changes.length === 1, 'both deliveries')
      expect(heard.b.changes).toEqual([event])
      expect(heard.c.changes).toEqual([event])
      // c does not follow `other`: b's marker there reaches b alone.
      await marker(nodes.a, heard.b, other)
      expect(heard.c.of(other)).toEqual([])
    })

    it('does not deliver users the node does not follow', async () => {
      const followed = newUserId()
      const unfollowed = newUserId()
      await nodes.b.follow(followed)
      await nodes.a.publish([changeEvent(unfollowed)])
      await marker(nodes.a, heard.b, followed)
      expect(heard.b.of(unfollowed)).toEqual([])
    })

    it('delivers many events to many users, each once', async () => {
      const users = Array.from({ length: 10 }, newUserId)
      for (const user of users) await nodes.b.follow(user)
      const events = Array.from({ length: 1000 }, (_, i) => changeEvent(users[i % users.length]!))
      // Batches, some of them in flight together, as concurrent requests would publish.
      const publishing: Promise<void>[] = []
      for (let i = 0; i < events.length; i += 50) {
        publishing.push(nodes.a.publish(events.slice(i, i + 25)))
        publishing.push(nodes.a.publish(events.slice(i + 25, i + 50)))
        if (publishing.length >= 8) await Promise.all(publishing.splice(0))
      }
      await Promise.all(publishing)
      await waitFor(() => heard.b.changes.length >= events.length, 'all 1000 events', 15_000)
      await marker(nodes.a, heard.b, users[0]!)
      const cursors = heard.b.changes.filter((e) => e.payload.marker !== true).map((e) => e.payload.cursor)
      expect(cursors).toHaveLength(events.length)
      expect(new Set(cursors).size).toBe(events.length)
      // Order is promised only between calls that do not overlap; these did, so only counts.
      for (const user of users) expect(unmarked(heard.b.of(user))).toHaveLength(events.length / users.length)
    })
  })

  describe('follow and unfollow', () => {
    it('stops delivering after unfollow', async () => {
      const user = newUserId()
      const other = newUserId()
      await nodes.b.follow(user)
      await nodes.b.follow(other)
      await nodes.a.publish([changeEvent(user)])
      await waitFor(() => heard.b.changes.length === 1, 'the first delivery')
      await nodes.b.unfollow(user)
      await nodes.a.publish([changeEvent(user)])
      await marker(nodes.a, heard.b, other)
      expect(heard.b.of(user)).toHaveLength(1)
    })

    it('follow is idempotent: following twice delivers once', async () => {
      const user = newUserId()
      await nodes.b.follow(user)
      await nodes.b.follow(user)
      await nodes.a.publish([changeEvent(user)])
      await marker(nodes.a, heard.b, user)
      expect(unmarked(heard.b.of(user))).toHaveLength(1)
    })

    it('unfollow is idempotent and accepts a user never followed', async () => {
      const user = newUserId()
      await nodes.b.unfollow(user)
      await nodes.b.follow(user)
      await nodes.b.unfollow(user)
      await nodes.b.unfollow(user)
      await nodes.b.follow(user)
      await nodes.a.publish([changeEvent(user)])
      await marker(nodes.a, heard.b, user)
      expect(unmarked(heard.b.of(user))).toHaveLength(1)
    })

    it('follows again after an unfollow', async () => {
      const user = newUserId()
      await nodes.b.follow(user)
      await nodes.b.unfollow(user)
      await nodes.b.follow(user)
      const event = changeEvent(user)
      await nodes.a.publish([event])
      await waitFor(() => heard.b.changes.length === 1, "b's delivery")
      expect(heard.b.changes).toEqual([event])
    })
  })

  describe('ping and close', () => {
    it('ping resolves on a working bus', async () => {
      await expect(nodes.a.ping()).resolves.toBeUndefined()
      await expect(nodes.b.ping()).resolves.toBeUndefined()
    })

    it('close is idempotent; after it ping rejects and publish resolves', async () => {
      await nodes.a.close()
      await nodes.a.close()
      await expect(nodes.a.ping()).rejects.toThrow()
      await expect(nodes.a.publish([changeEvent(newUserId())])).resolves.toBeUndefined()
      await Promise.all([nodes.b.close(), nodes.b.close()])
      await expect(nodes.b.ping()).rejects.toThrow()
    })

    it('a closed node delivers nothing more', async () => {
      const user = newUserId()
      await nodes.b.follow(user)
      await nodes.c.follow(user)
      await nodes.b.close()
      await nodes.a.publish([changeEvent(user)])
      await marker(nodes.a, heard.c, user)
      expect(heard.b.changes).toEqual([])
    })
  })
}

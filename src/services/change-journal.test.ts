import { beforeEach, describe, expect, it, vi } from 'vitest'
import { serviceScene, storeFile } from '../../test/helpers/service-files.js'
import type { JournalEntry } from '../domain/journal.js'
import type { NodeRecord, User } from '../domain/model.js'
import type { MetadataStore } from '../ports/metadata-store.js'
import { ChangeJournal } from './change-journal.js'

describe('ChangeJournal', () => {
  const s = serviceScene()
  /** What happened, in order: the store's transaction resolving (`commit`), the journal telling (`told`). */
  let events: string[]
  let told: JournalEntry[][]
  let journal: ChangeJournal
  beforeEach(() => {
    events = []
    told = []
    journal = new ChangeJournal(committing(s.fx.meta, events), s.fx.now, (entries) => {
      events.push('told')
      told.push([...entries])
    })
  })

  const entriesOf = (user: User) => s.fx.meta.journal.after(user.id, 0, 100)
  const newEntriesOf = async (user: User, after: number) =>
    (await s.fx.meta.journal.after(user.id, after, 100)).map((e) => [e.nodeId, e.action, e.parentId])
  const headOf = async (user: User) => (await s.fx.meta.journal.bounds(user.id)).head
  const live = async (id: string) => (await s.fx.meta.nodes.findAnyState(id)) as NodeRecord

  it('appends what a transaction records to the owner’s journal, and tells of it once, after commit', async () => {
    const docs = await s.mkdir('docs')
    const head = await headOf(s.ann)
    s.fx.advance(5_000)
    const result = await journal.transaction(s.ann.id, async (tx, log) => {
      await tx.nodes.update(docs.id, { name: 'papers', updatedAt: s.fx.now() })
      log.record((await tx.nodes.findLive(s.ann.id, docs.id)) as NodeRecord, 'move', { from: docs.parentId })
      expect(events).toEqual([])
      return 'done'
    })
    expect(result).toBe('done')
    expect(events).toEqual(['commit', 'told'])
    const stored = (await entriesOf(s.ann)).filter((e) => e.seq > head)
    expect(stored).toMatchObject([
      { nodeId: docs.id, action: 'move', name: 'papers', parentId: null, actorId: s.ann.id, at: s.fx.now() },
    ])
    expect(told).toEqual([stored])
  })

  it('leaves neither the change nor any entry when the work throws, and tells nobody', async () => {
    const docs = await s.mkdir('docs')
    const before = await entriesOf(s.ann)
    const failing = journal.transaction(s.ann.id, async (tx, log) => {
      await tx.nodes.update(docs.id, { name: 'papers', updatedAt: s.fx.now() })
      log.record((await tx.nodes.findLive(s.ann.id, docs.id)) as NodeRecord, 'move', { from: docs.parentId })
      log.recordFor(s.ann.id, docs, 'create')
      throw new Error('the work failed')
    })
    await expect(failing).rejects.toThrow('the work failed')
    expect(await entriesOf(s.ann)).toEqual(before)
    expect((await live(docs.id)).name).toBe('docs')
    expect(told).toEqual([])
  })

  it('tells nothing for a transaction that records nothing', async () => {
    const head = await headOf(s.ann)
    expect(await journal.transaction(s.ann.id, async () => 42)).toBe(42)
    expect(told).toEqual([])
    expect(await headOf(s.ann)).toBe(head)
  })

  it('fans a change out to every member of a shared folder above it, once each, and to nobody else', async () => {
    const team = await s.mkdir('team')
    const inner = await s.mkdir('inner', team.id)
    const file = await storeFile(s.services, s.ann, 'a.txt', 'x', { folderId: inner.id })
    const [bob, carol, dave] = [await s.fx.user('bob'), await s.fx.user('carol'), await s.fx.user('dave')]
    const add = (folderId: string, user: User) =>
      s.services.members.add(s.ann, { folderId, email: user.email, role: 'viewer' })
    await add(team.id, bob)
    await add(inner.id, bob)
    await add(inner.id, carol)
    const heads = await Promise.all([s.ann, bob, carol, dave].map(headOf))

    await journal.transaction(bob.id, async (_tx, log) => log.record(file, 'update'))
    const [forAnn, forBob, forCarol, forDave] = await Promise.all(
      [s.ann, bob, carol, dave].map((user, i) => newEntriesOf(user, heads[i] as number)),
    )
    expect(forAnn).toEqual([[file.id, 'update', inner.id]])
    expect(forBob).toEqual([[file.id, 'update', inner.id]])
    expect(forCarol).toEqual([[file.id, 'update', inner.id]])
    expect(forDave).toEqual([])
    expect(told[0]?.map((e) => [e.userId, e.actorId])).toEqual(
      expect.arrayContaining([
        [s.ann.id, bob.id],
        [bob.id, bob.id],
        [carol.id, bob.id],
      ]),
    )
    expect(told[0]).toHaveLength(3)

    // The folder shared itself is at the top of a member's view: in their root, as they see it.
    const bobHead = await headOf(bob)
    await journal.transaction(s.ann.id, async (_tx, log) => log.record(inner, 'update'))
    expect(await newEntriesOf(bob, bobHead)).toEqual([[inner.id, 'update', team.id]])
    const carolHead = await headOf(carol)
    await journal.transaction(s.ann.id, async (_tx, log) => log.record(inner, 'update'))
    expect(await newEntriesOf(carol, carolHead)).toEqual([[inner.id, 'update', null]])
  })

  it('tells a member of a move out of their view as a delete, and of one into it as a create', async () => {
    const team = await s.mkdir('team')
    const file = await storeFile(s.services, s.ann, 'a.txt', 'x', { folderId: team.id })
    const bob = await s.fx.user('bob')
    await s.services.members.add(s.ann, { folderId: team.id, email: bob.email, role: 'editor' })
    const move = (parentId: string) =>
      journal.transaction(s.ann.id, async (tx, log) => {
        const from = ((await tx.nodes.findAnyState(file.id)) as NodeRecord).parentId
        await tx.nodes.update(file.id, { parentId, updatedAt: s.fx.now() })
        log.record((await tx.nodes.findLive(s.ann.id, file.id)) as NodeRecord, 'move', { from })
      })

    let [annHead, bobHead] = [await headOf(s.ann), await headOf(bob)]
    await move(s.ann.rootFolderId)
    expect(await newEntriesOf(s.ann, annHead)).toEqual([[file.id, 'move', null]])
    expect(await newEntriesOf(bob, bobHead)).toEqual([[file.id, 'delete', null]])

    ;[annHead, bobHead] = [await headOf(s.ann), await headOf(bob)]
    await move(team.id)
    expect(await newEntriesOf(s.ann, annHead)).toEqual([[file.id, 'move', team.id]])
    expect(await newEntriesOf(bob, bobHead)).toEqual([[file.id, 'create', team.id]])
  })

  it('writes a change for one user only (recordFor), shown at the top of their view', async () => {
    const team = await s.mkdir('team')
    const bob = await s.fx.user('bob')
    const [annHead, bobHead] = [await headOf(s.ann), await headOf(bob)]
    await journal.transaction(s.ann.id, async (_tx, log) => log.recordFor(bob.id, team, 'create'))
    expect(await newEntriesOf(bob, bobHead)).toEqual([[team.id, 'create', null]])
    expect(await newEntriesOf(s.ann, annHead)).toEqual([])
    expect(told.flat().map((e) => e.userId)).toEqual([bob.id])
  })

  it('is what the services write through: the hub hears of their changes after commit', async () => {
    const committed = vi.spyOn(s.services.hub, 'committed')
    const { node } = await s.services.folders.create(s.ann, { name: 'docs' })
    expect(committed).toHaveBeenCalledTimes(1)
    expect(committed.mock.calls[0]?.[0]).toMatchObject([
      { userId: s.ann.id, nodeId: node.id, action: 'create' },
    ])
  })
})

/** `meta`, noting `commit` in `events` whenever one of its transactions has committed. */
function committing(meta: MetadataStore, events: string[]): MetadataStore {
  return new Proxy(meta, {
    get(target, property) {
      if (property === 'transaction') {
        return async (work: Parameters<MetadataStore['transaction']>[0]) => {
          const result = await target.transaction(work)
          events.push('commit')
          return result
        }
      }
      const value = Reflect.get(target, property, target)
      return typeof value === 'function' ? value.bind(target) : value
    },
  })
}

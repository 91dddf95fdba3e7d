import { describe, expect, it } from 'vitest'
import { type Unsent, UnsentBuffer } from './unsent-buffer.js'

/** Messages numbered in publish order; `users` names whose event each one is. */
const messages = (seqs: number[], users: string[] = seqs.map((seq) => `u${seq}`)): Unsent[] =>
  seqs.map((seq, i) => ({ seq, userId: users[i]! }))

const seqsOf = (list: readonly Unsent[]): number[] => list.map(({ seq }) => seq)

describe('UnsentBuffer', () => {
  it('keeps what is added in the order it came, and drain hands it all over once', () => {
    const buffer = new UnsentBuffer(10)
    buffer.add(messages([1, 2]))
    buffer.add(messages([3]))
    expect(buffer.size).toBe(3)
    expect(buffer.drain()).toEqual({ messages: messages([1, 2, 3]), droppedUsers: [], forgotten: 0 })
    expect(buffer.size).toBe(0)
    expect(buffer.drain()).toEqual({ messages: [], droppedUsers: [], forgotten: 0 })
  })

  it('holds exactly `limit` messages without dropping any', () => {
    const buffer = new UnsentBuffer(3)
    buffer.add(messages([1, 2, 3]))
    expect(buffer.hasDrops).toBe(false)
    expect(seqsOf(buffer.drain().messages)).toEqual([1, 2, 3])
  })

  it('drops the oldest past its limit and remembers whose they were', () => {
    const buffer = new UnsentBuffer(3)
    buffer.add(messages([1, 2, 3, 4], ['ann', 'bob', 'ann', 'cy']))
    buffer.add(messages([5], ['dee']))
    expect(buffer.size).toBe(3)
    expect(buffer.hasDrops).toBe(true)
    const drained = buffer.drain()
    expect(seqsOf(drained.messages)).toEqual([3, 4, 5])
    // Each user once, however many of their events went.
    expect(drained.droppedUsers).toEqual(['ann', 'bob'])
    expect(drained.forgotten).toBe(0)
  })

  it('puts unconfirmed messages back in publish order, before what was added since', () => {
    const buffer = new UnsentBuffer(10)
    buffer.add(messages([5, 6]))
    buffer.putBack(messages([3, 1, 2]))
    expect(seqsOf(buffer.drain().messages)).toEqual([1, 2, 3, 5, 6])
  })

  it('drops the oldest by publish order when what is put back overflows it', () => {
    const buffer = new UnsentBuffer(3)
    buffer.add(messages([4, 5], ['new', 'new']))
    buffer.putBack(messages([1, 2], ['old', 'older']))
    const drained = buffer.drain()
    expect(seqsOf(drained.messages)).toEqual([2, 4, 5])
    expect(drained.droppedUsers).toEqual(['old'])
  })

  it('keeps the order of additions as they are: only putBack sorts', () => {
    const buffer = new UnsentBuffer(10)
    buffer.add(messages([2, 1]))
    expect(seqsOf(buffer.drain().messages)).toEqual([2, 1])
  })

  it('remembers at most `limit` users and counts the events of the others as forgotten', () => {
    const buffer = new UnsentBuffer(2)
    buffer.add(messages([1, 2, 3, 4, 5, 6, 7], ['a', 'b', 'c', 'a', 'd', 'x', 'y']))
    const drained = buffer.drain()
    expect(seqsOf(drained.messages)).toEqual([6, 7])
    expect(drained.droppedUsers).toEqual(['a', 'b'])
    // c and d were not remembered; the second event of a was.
    expect(drained.forgotten).toBe(2)
  })

  it('starts afresh after a drain: no drops, nothing forgotten', () => {
    const buffer = new UnsentBuffer(1)
    buffer.add(messages([1, 2, 3]))
    expect(buffer.drain().forgotten).toBe(1)
    expect(buffer.hasDrops).toBe(false)
    buffer.add(messages([4]))
    expect(buffer.drain()).toEqual({ messages: messages([4]), droppedUsers: [], forgotten: 0 })
  })

  it('forgets everything on clear', () => {
    const buffer = new UnsentBuffer(1)
    buffer.add(messages([1, 2]))
    buffer.clear()
    expect(buffer.size).toBe(0)
    expect(buffer.hasDrops).toBe(false)
    expect(buffer.drain()).toEqual({ messages: [], droppedUsers: [], forgotten: 0 })
  })

  it('drain hands over arrays of its own: what was taken cannot be changed through the buffer', () => {
    const buffer = new UnsentBuffer(5)
    buffer.add(messages([1]))
    const taken = buffer.drain().messages
    buffer.add(messages([2]))
    expect(seqsOf(taken)).toEqual([1])
  })
})

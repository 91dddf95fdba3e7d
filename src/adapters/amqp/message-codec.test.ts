import { describe, expect, it } from 'vitest'
import type { ChangeEvent } from '../../ports/event-bus.js'
import {
  decodeMessage,
  encodeChange,
  encodeResyncHint,
  MAX_BODY_BYTES,
  publishOptions,
} from './message-codec.js'
import { isRoutable, routingKeyOf } from './topology.js'

const event = (
  userId = 'u1',
  payload: Record<string, unknown> = { type: 'change', cursor: 7 },
): ChangeEvent => ({
  userId,
  payload,
})

/** A body as another node, tool or person might publish it, under `userId`'s key. */
const decodeRaw = (body: string | Buffer, userId = 'u1') =>
  decodeMessage(typeof body === 'string' ? Buffer.from(body) : body, routingKeyOf(userId))

describe('routing', () => {
  it('routes each user under `user.<id>.change`', () => {
    expect(routingKeyOf('42')).toBe('user.42.change')
  })

  it.each(['', 'a.b', 'user.*', '#', 'a*', '.'])('refuses %j as one word of a topic key', (userId) => {
    expect(isRoutable(userId)).toBe(false)
  })

  it.each(['42', '0b9f-uuid', 'ünïcode', 'a b'])('accepts %j', (userId) => {
    expect(isRoutable(userId)).toBe(true)
  })
})

describe('encodeChange', () => {
  it('writes the event as JSON {userId, payload}, with an id and a time in seconds', () => {
    const before = Math.floor(Date.now() / 1000)
    const message = encodeChange(event())
    expect(JSON.parse(message.body.toString('utf8'))).toEqual(event())
    expect(message.userId).toBe('u1')
    expect(message.messageId).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/)
    expect(message.timestamp).toBeGreaterThanOrEqual(before)
    expect(message.timestamp).toBeLessThanOrEqual(Math.floor(Date.now() / 1000))
  })

  it('numbers messages in the order they are made, hints included', () => {
    const first = encodeChange(event())
    const hint = encodeResyncHint('u2')
    const last = encodeChange(event())
    expect(hint.seq).toBeGreaterThan(first.seq)
    expect(last.seq).toBeGreaterThan(hint.seq)
    expect(new Set([first.messageId, hint.messageId, last.messageId]).size).toBe(3)
  })

  it.each(['a.b', 'user.*', '#', ''])('refuses the unroutable user id %j', (userId) => {
    expect(() => encodeChange(event(userId))).toThrow(TypeError)
  })

  it('takes a body of MAX_BODY_BYTES and refuses one byte more', () => {
    const overhead = encodeChange(event('u1', { blob: '' })).body.length
    const fits = event('u1', { blob: 'x'.repeat(MAX_BODY_BYTES - overhead) })
    expect(encodeChange(fits).body.length).toBe(MAX_BODY_BYTES)
    const over = event('u1', { blob: 'x'.repeat(MAX_BODY_BYTES - overhead + 1) })
    expect(() => encodeChange(over)).toThrow(RangeError)
  })
})

describe('publishOptions', () => {
  it('sends persistent JSON named by its id, its time and the node that sent it', () => {
    const message = encodeChange(event())
    expect(publishOptions(message, 'node-a')).toEqual({
      persistent: true,
      contentType: 'application/json',
      messageId: message.messageId,
      timestamp: message.timestamp,
      appId: 'node-a',
    })
  })
})

describe('decodeMessage', () => {
  it('reads back what encodeChange wrote', () => {
    const original = event('u1', { type: 'change', cursor: 3, nested: { list: [1, 'two'] } })
    expect(decodeMessage(encodeChange(original).body, routingKeyOf('u1'))).toEqual(original)
  })

  it('reads back a resync hint', () => {
    expect(decodeMessage(encodeResyncHint('u9').body, routingKeyOf('u9'))).toEqual({
      userId: 'u9',
      resync: true,
    })
  })

  it('keeps only userId and payload of a change, dropping other fields', () => {
    expect(decodeRaw(JSON.stringify({ userId: 'u1', payload: { a: 1 }, extra: true }))).toEqual(
      event('u1', { a: 1 }),
    )
  })

  it('takes a hint whatever else it carries', () => {
    expect(decodeRaw(JSON.stringify({ userId: 'u1', resync: true, payload: { a: 1 } }))).toEqual({
      userId: 'u1',
      resync: true,
    })
  })

  it('refuses a message under another user’s key', () => {
    expect(decodeMessage(encodeChange(event('u1')).body, routingKeyOf('u2'))).toBeNull()
    expect(decodeMessage(encodeChange(event('u1')).body, 'user.*.change')).toBeNull()
  })

  it.each([
    ['truncated JSON', '{"userId":'],
    ['empty body', ''],
    ['not UTF-8 JSON', Buffer.from([0xff, 0xfe, 0x00])],
    ['null', 'null'],
    ['a string', '"u1"'],
    ['a number', '42'],
    ['an array', '[{"userId":"u1","payload":{}}]'],
    ['no userId', '{"payload":{}}'],
    ['a userId that is not a string', '{"userId":1,"payload":{}}'],
    ['no payload', '{"userId":"u1"}'],
    ['a null payload', '{"userId":"u1","payload":null}'],
    ['an array payload', '{"userId":"u1","payload":[1,2]}'],
    ['a string payload', '{"userId":"u1","payload":"x"}'],
    ['resync that is not true, without payload', '{"userId":"u1","resync":"true"}'],
  ])('refuses %s', (_what, body) => {
    expect(decodeRaw(body)).toBeNull()
  })
})

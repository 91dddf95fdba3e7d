import { randomUUID } from 'node:crypto'
import type { Options } from 'amqplib'
import type { ChangeEvent } from '../../ports/event-bus.js'
import { isRoutable, routingKeyOf } from './topology.js'

/**
 * Change hints are small; a message the broker refuses for its size closes the channel, and
 * sending it again after every reconnect would never end.
 */
export const MAX_BODY_BYTES = 1024 * 1024

/** An encoded message, as it is sent or as it waits for the broker. */
export interface Outgoing {
  /** Publish order, which messages sent again after a lost connection take their place by. */
  seq: number
  userId: string
  body: Buffer
  messageId: string
  /** Seconds, as AMQP's timestamp property is. */
  timestamp: number
}

/** Sent under a user's key when events of that user were dropped: its followers resync. */
export interface ResyncHint {
  userId: string
  resync: true
}

/** What a message may carry. */
export type Incoming = ChangeEvent | ResyncHint

/** Counts across every bus of the process, so that any two messages compare by it. */
let published = 0

/** A message for one user's key: a change `{userId, payload}` or a hint `{userId, resync: true}`. */
const envelope = (userId: string, body: Record<string, unknown>): Outgoing => ({
  seq: ++published,
  userId,
  body: Buffer.from(JSON.stringify(body)),
  messageId: randomUUID(),
  timestamp: Math.floor(Date.now() / 1000),
})

/**
 * The message of one change event. Throws a TypeError for a user id that cannot be one word of a
 * routing key and a RangeError for a body over MAX_BODY_BYTES: neither could ever be delivered.
 */
export function encodeChange(event: ChangeEvent): Outgoing {
  if (!isRoutable(event.userId)) throw new TypeError(`not a routable user id: ${event.userId}`)
  const message = envelope(event.userId, { userId: event.userId, payload: event.payload })
  if (message.body.length > MAX_BODY_BYTES)
    throw new RangeError(`change event of ${message.body.length} bytes`)
  return message
}

/** The message telling the followers of `userId` to resync. */
export const encodeResyncHint = (userId: string): Outgoing => envelope(userId, { userId, resync: true })

/**
 * The AMQP properties a message is published with: persistent JSON, named by its id, and by the
 * node that sent it (`appId`), so that this node can skip its own messages.
 */
export function publishOptions(message: Outgoing, nodeId: string): Options.Publish {
  const { messageId, timestamp } = message
  return { persistent: true, contentType: 'application/json', messageId, timestamp, appId: nodeId }
}

const isRecord = (value: unknown): value is Record<string, unknown> =>
  typeof value === 'object' && value !== null && !Array.isArray(value)

/**
 * What a message carries, or null for anything but what `encodeChange` and `encodeResyncHint`
 * make, under its user's key: any other node, tool or person may publish to the exchange.
 */
export function decodeMessage(content: Buffer, routingKey: string): Incoming | null {
  let body: unknown
  try {
    body = JSON.parse(content.toString('utf8'))
  } catch {
    return null
  }
  if (!isRecord(body) || typeof body.userId !== 'string') return null
  if (routingKey !== routingKeyOf(body.userId)) return null
  if (body.resync === true) return { userId: body.userId, resync: true }
  return isRecord(body.payload) ? { userId: body.userId, payload: body.payload } : null
}

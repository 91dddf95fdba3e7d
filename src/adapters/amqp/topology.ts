import type { Channel, ConfirmChannel } from 'amqplib'

// Names fixed by the project brief: operators and other tools look for them.
export const EXCHANGE = 'sync.events'
export const DEAD_LETTER_EXCHANGE = 'dlx'
export const DEAD_LETTER_QUEUE = 'sync.dead'
export const routingKeyOf = (userId: string): string => `user.${userId}.change`

/** Bounds, so neither dead letters nor a stalled node's queue can fill the broker's memory. */
const DEAD_LETTER_MAX_LENGTH = 10_000
const NODE_QUEUE_MAX_LENGTH = 10_000
const PREFETCH = 256
/** A user id must be one word of a topic key: a dot would split it, `*` or `#` would match others. */
const ROUTABLE = /^[^.*#]+$/

export const isRoutable = (userId: string): boolean => ROUTABLE.test(userId)

/**
 * Declares the exchanges and the dead-letter queue (idempotent, so every connection does it
 * again), then this node's own queue, whose server-chosen name it returns.
 */
export async function declareTopology(publisher: ConfirmChannel, consumer: Channel): Promise<string> {
  await publisher.assertExchange(EXCHANGE, 'topic', { durable: true })
  await publisher.assertExchange(DEAD_LETTER_EXCHANGE, 'fanout', { durable: true })
  await publisher.assertQueue(DEAD_LETTER_QUEUE, { durable: true, maxLength: DEAD_LETTER_MAX_LENGTH })
  await publisher.bindQueue(DEAD_LETTER_QUEUE, DEAD_LETTER_EXCHANGE, '')
  await consumer.prefetch(PREFETCH)
  // Exclusive and server-named: a named queue could still be held by the broker for a
  // connection it has not noticed is dead.
  // drop-head, not reject-publish: a stalled node loses its oldest messages (dead-lettered)
  // instead of making every other node's publishes nacked.
  const { queue } = await consumer.assertQueue('', {
    exclusive: true,
    autoDelete: true,
    deadLetterExchange: DEAD_LETTER_EXCHANGE,
    maxLength: NODE_QUEUE_MAX_LENGTH,
    overflow: 'drop-head',
  })
  return queue
}

/** The users bound on one node queue: one binding to `sync.events` per followed user. */
export class UserBindings {
  readonly #channel: Channel
  readonly #queue: string
  readonly #bound = new Set<string>()
  /** Binding changes run one after another, so a follow and an unfollow cannot interleave. */
  #pending: Promise<void> = Promise.resolve()

  constructor(channel: Channel, queue: string) {
    this.#channel = channel
    this.#queue = queue
  }

  /**
   * Binds the users of `followed` not bound yet and unbinds those no longer in it, after the
   * previous call has settled. `followed` is read as it is then, not as it was when called.
   * Rejects when the channel fails; the next call still runs.
   */
  converge(followed: ReadonlySet<string>): Promise<void> {
    const run = this.#pending.then(() => this.#apply(followed))
    this.#pending = run.catch(() => {})
    return run
  }

  async #apply(followed: ReadonlySet<string>): Promise<void> {
    for (const userId of followed) {
      if (this.#bound.has(userId)) continue
      await this.#channel.bindQueue(this.#queue, EXCHANGE, routingKeyOf(userId))
      this.#bound.add(userId)
    }
    for (const userId of this.#bound) {
      if (followed.has(userId)) continue
      await this.#channel.unbindQueue(this.#queue, EXCHANGE, routingKeyOf(userId))
      this.#bound.delete(userId)
    }
  }
}

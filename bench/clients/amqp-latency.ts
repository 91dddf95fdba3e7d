// The RabbitMQ reference: `count` persistent messages (after `warmup` unmeasured ones), one at
// a time, through a topic exchange of this run's own (auto-delete) to a queue declared as
// Tessera declares its node queue (server-named, exclusive, auto-delete), published on a
// confirm channel of one connection and consumed (with acks) on another, as two Tessera nodes
// do. Both ends are in this process: the figure is the broker's, not two event loops'.
import { randomBytes } from 'node:crypto'
import { connect } from 'amqplib'
import { clientMain } from '../lib/child.js'

interface Config {
  url: string
  count: number
  warmup: number
  messageBytes: number
}

export interface AmqpLatencyResult {
  exchange: string
  /** publish → the consumer's callback, and publish → the broker's confirm. */
  consumeMs: number[]
  confirmMs: number[]
}

const clockMs = (): number => Number(process.hrtime.bigint()) / 1e6

clientMain<Config, AmqpLatencyResult>(async (config) => {
  const exchange = `tessera-bench-latency-${randomBytes(6).toString('hex')}`
  const routingKey = `user.${randomBytes(8).toString('hex')}.change`
  const publisherConnection = await connect(config.url)
  const consumerConnection = await connect(config.url)
  try {
    const publisher = await publisherConnection.createConfirmChannel()
    const consumer = await consumerConnection.createChannel()
    await publisher.assertExchange(exchange, 'topic', { durable: false, autoDelete: true })
    await consumer.prefetch(256)
    const { queue } = await consumer.assertQueue('', { exclusive: true, autoDelete: true })
    await consumer.bindQueue(queue, exchange, routingKey)
    let arrived: ((id: string, at: number) => void) | undefined
    await consumer.consume(queue, (message) => {
      if (message === null) return
      const at = clockMs()
      consumer.ack(message)
      arrived?.(String(message.properties.messageId), at)
    })
    const body = Buffer.alloc(config.messageBytes, 'x')
    const result: AmqpLatencyResult = { exchange, consumeMs: [], confirmMs: [] }
    for (let n = 0; n < config.warmup + config.count; n++) {
      const id = String(n)
      const consumed = new Promise<number>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`message ${n} not consumed in 10 s`)), 10_000)
        arrived = (got, at) => {
          if (got !== id) return reject(new Error(`consumed message ${got}, expected ${id}`))
          clearTimeout(timer)
          resolve(at)
        }
      })
      const sent = clockMs()
      const confirmed = new Promise<number>((resolve, reject) => {
        publisher.publish(
          exchange,
          routingKey,
          body,
          { persistent: true, contentType: 'application/json', messageId: id },
          (error) => (error ? reject(error) : resolve(clockMs())),
        )
      })
      const [consumedAt, confirmedAt] = await Promise.all([consumed, confirmed])
      if (n < config.warmup) continue
      result.consumeMs.push(consumedAt - sent)
      result.confirmMs.push(confirmedAt - sent)
    }
    await publisher.deleteExchange(exchange).catch(() => {})
    return result
  } finally {
    await publisherConnection.close().catch(() => {})
    await consumerConnection.close().catch(() => {})
  }
})

import { connect } from 'amqplib'

/** RabbitMQ for the tests: TEST_AMQP_URL, or the local default. */
export const AMQP_URL = process.env.TEST_AMQP_URL ?? 'amqp://guest:guest@127.0.0.1:5672'

/** How long the probe waits for RabbitMQ before calling it unavailable. */
const PROBE_TIMEOUT_MS = 3_000

let probe: Promise<boolean> | undefined

/**
 * Whether RabbitMQ answers at AMQP_URL; asked once per test file. Guard RabbitMQ suites with
 * `describe.skipIf(!(await amqpAvailable()))`. When it does not answer this warns loudly that
 * they are skipped, and under CI it throws instead, which fails the file: there a missing
 * broker is a broken setup, not a reason to pass.
 */
export function amqpAvailable(): Promise<boolean> {
  probe ??= reach().then((problem) => {
    if (problem === null) return true
    const message = [
      '',
      '='.repeat(78),
      '  RabbitMQ IS NOT AVAILABLE: every RabbitMQ test of this file is SKIPPED.',
      `  Tried ${redact(AMQP_URL)} (set TEST_AMQP_URL to point elsewhere).`,
      `  ${problem}`,
      '='.repeat(78),
      '',
    ].join('\n')
    if (process.env.CI) throw new Error(`${message}\nCI is set: RabbitMQ must be reachable, failing.`)
    console.warn(message)
    return false
  })
  return probe
}

/** Null when a connection opens, else why it did not. */
async function reach(): Promise<string | null> {
  try {
    const connection = await connect(AMQP_URL, { timeout: PROBE_TIMEOUT_MS })
    // An 'error' event without a listener would be thrown.
    connection.on('error', () => {})
    await connection.close()
    return null
  } catch (error) {
    return `Connecting failed: ${error instanceof Error ? error.message : String(error)}`
  }
}

const redact = (url: string): string => url.replace(/\/\/([^:@/]+):[^@/]*@/, '//$1:***@')

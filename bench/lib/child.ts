/** Marks the line a client prints its result on (the last such line of its stdout). */
export const RESULT_MARKER = 'BENCH_RESULT '

/**
 * The entry of a client process: reads its JSON config (argv[2]), runs, prints the result on
 * one marked line and exits (0, or 1 with the error on stderr).
 */
export function clientMain<C, R>(run: (config: C) => Promise<R>): void {
  const raw = process.argv[2]
  if (!raw) {
    console.error('usage: node --import tsx <client>.ts <json config>')
    process.exit(2)
  }
  run(JSON.parse(raw) as C).then(
    (result) => {
      process.stdout.write(`${RESULT_MARKER}${JSON.stringify(result)}\n`, () => process.exit(0))
    },
    (error: unknown) => {
      console.error(error instanceof Error ? (error.stack ?? error.message) : error)
      process.exit(1)
    },
  )
}

/** The entry of a server process: config from argv[2], stops cleanly on SIGTERM/SIGINT. */
export function serverMain<C>(run: (config: C) => Promise<{ close(): Promise<void> }>): void {
  const raw = process.argv[2]
  if (!raw) {
    console.error('usage: node --import tsx <server>.ts <json config>')
    process.exit(2)
  }
  run(JSON.parse(raw) as C).then(
    (server) => {
      const stop = () => {
        const timer = setTimeout(() => process.exit(0), 2000)
        timer.unref()
        void server.close().finally(() => process.exit(0))
      }
      process.once('SIGTERM', stop)
      process.once('SIGINT', stop)
    },
    (error: unknown) => {
      console.error(error instanceof Error ? (error.stack ?? error.message) : error)
      process.exit(1)
    },
  )
}

#!/usr/bin/env node
// First: it must run before anything starts libuv's thread pool.
import './threadpool.js'
import { Command, InvalidArgumentError } from 'commander'
import { openServices } from '../composition.js'
import { type Config, loadConfig } from '../config.js'
import { blobName } from '../domain/blob-key.js'
import { systemClock } from '../domain/clock.js'
import { startServer } from '../main.js'
import type { AppServices } from '../services/app-services.js'

const program = new Command()
program.name('tessera').description('Tessera: self-hosted file storage and sync')

function configOrExit(): Config {
  try {
    return loadConfig(process.env)
  } catch (error) {
    console.error((error as Error).message)
    process.exit(2)
  }
}

/**
 * Opens the configured stores, runs `work` on the services, closes them, answers the exit code.
 * The maintenance commands publish no changes, so they need no broker: an in-process bus.
 */
async function withServices(work: (services: AppServices) => Promise<number>): Promise<never> {
  const config = configOrExit()
  const { services, close } = await openServices({ ...config, bus: { kind: 'local' } }, systemClock)
  let code: number
  try {
    code = await work(services)
  } finally {
    await close()
  }
  process.exit(code)
}

program
  .command('serve')
  .description('run the server (configured by environment variables, see README)')
  .action(async () => {
    const config = configOrExit()
    const server = await startServer(config)
    server.app.log.info(
      { url: server.url, db: config.db.kind, blobs: config.blobs.kind },
      'tessera is serving',
    )
    const stop = async (signal: string) => {
      server.app.log.info({ signal }, 'shutting down')
      await server.close()
      process.exit(0)
    }
    process.once('SIGINT', () => void stop('SIGINT'))
    process.once('SIGTERM', () => void stop('SIGTERM'))
  })

program
  .command('gc')
  .description('collect unreferenced chunks now (safe while the server runs)')
  .option('--dry-run', 'report what would be deleted, delete nothing')
  .option('--orphans', 'also walk the chunk store for bytes no row knows (slower)')
  .option('--json', 'print the report as JSON')
  .action(async (options: { dryRun?: boolean; orphans?: boolean; json?: boolean }) => {
    await withServices(async (services) => {
      const report = await services.gc.run({ dryRun: options.dryRun, orphans: options.orphans })
      if (options.json) console.log(JSON.stringify(report))
      else {
        const verb = report.dryRun ? 'would delete' : 'deleted'
        console.log(
          `gc: ${verb} ${report.swept} chunks (${report.sweptBytes} bytes); marked ${report.marked}; ` +
            `resumed ${report.resumed}; orphans ${report.orphans}; expired uploads ${report.expiredUploads}; ` +
            `${report.errors.length} errors; ${report.durationMs} ms`,
        )
        for (const { hash, error } of report.errors) console.error(`gc: could not delete ${hash}: ${error}`)
      }
      return report.errors.length > 0 ? 1 : 0
    })
  })

const parseFraction = (raw: string): number => {
  const fraction = Number(raw)
  if (!(fraction > 0 && fraction <= 1)) throw new InvalidArgumentError('a number in (0, 1]')
  return fraction
}

program
  .command('scrub')
  .description(
    're-read stored chunks and check them; reports problems and marks damaged chunks, never deletes',
  )
  .option('--fraction <f>', 'check this share of chunks, least recently checked first', parseFraction, 1)
  .option('--json', 'print the report as JSON')
  .action(async (options: { fraction: number; json?: boolean }) => {
    await withServices(async (services) => {
      const config = configOrExit()
      const report = await services.scrubber.run({
        fraction: options.fraction,
        unknownGraceMs: config.gc.graceMs,
      })
      if (options.json) console.log(JSON.stringify(report))
      else {
        console.log(
          `scrub: checked ${report.checked} chunks (${report.bytes} bytes) in ${report.durationMs} ms: ` +
            (report.clean ? 'clean' : 'PROBLEMS FOUND'),
        )
        for (const c of report.corrupt)
          console.error(`corrupt: ${c.hash} (reads as ${c.actual}, ${c.size} bytes)`)
        for (const hash of report.missing) console.error(`missing: ${hash}`)
        for (const hash of report.markedDamaged)
          console.error(`marked damaged (the next upload of its bytes repairs it): ${hash}`)
        if (report.damaged > 0)
          console.error(`${report.damaged} chunk(s) stand damaged, waiting for an upload of their bytes`)
        for (const e of report.readErrors) console.error(`read error: ${e.hash}: ${e.error}`)
        for (const hash of report.danglingReferences) console.error(`referenced but not stored: ${hash}`)
        for (const m of report.refCountMismatches)
          console.error(`reference count: ${m.hash} says ${m.refCount}, versions name it ${m.actual} times`)
        for (const m of report.sizeMismatches)
          console.error(`sizes disagree: file ${m.nodeId} version ${m.version}: ${m.problem}`)
        for (const copy of report.unknown)
          console.error(`stored but unknown (gc --orphans reclaims): ${blobName(copy)}`)
        for (const error of report.storeErrors) console.error(`walking the chunk store failed: ${error}`)
      }
      return report.clean ? 0 : 1
    })
  })

await program.parseAsync(process.argv)

#!/usr/bin/env node
import { Command } from 'commander'
import { loadConfig } from '../config.js'
import { startServer } from '../main.js'

const program = new Command()
program.name('tessera').description('Tessera: self-hosted file storage and sync')

program
  .command('serve')
  .description('run the server (configured by environment variables, see README)')
  .action(async () => {
    let config: ReturnType<typeof loadConfig>
    try {
      config = loadConfig(process.env)
    } catch (error) {
      console.error((error as Error).message)
      process.exit(2)
    }
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

await program.parseAsync(process.argv)

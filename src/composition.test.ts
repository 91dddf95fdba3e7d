import { execFile } from 'node:child_process'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { promisify } from 'node:util'
import { afterEach, describe, expect, it } from 'vitest'
import { createTestDatabase, postgresAvailable } from '../test/helpers/databases.js'

/**
 * The composition root loads an adapter's SDK only when the configuration picks it: checked in
 * a fresh process (a test worker may have loaded anything before), by the CommonJS modules it
 * has loaded once the stores and bus are open.
 */
const script = `
import { createRequire } from 'node:module'
import { loadConfig } from './src/config.ts'
import { openBus, openStores } from './src/composition.ts'
const config = loadConfig(JSON.parse(process.env.TEST_ENV))
const stores = await openStores(config)
const bus = await openBus(config.bus, () => {})
const loaded = Object.keys(createRequire(import.meta.url).cache)
const uses = (name) => loaded.some((file) => file.includes('/node_modules/' + name + '/'))
console.log(JSON.stringify({ pg: uses('pg'), amqplib: uses('amqplib'), sqlite: uses('better-sqlite3') }))
await bus.close()
await stores.meta.close()
`

async function modulesLoadedWith(env: Record<string, string>) {
  const { stdout } = await promisify(execFile)(
    process.execPath,
    ['--import', 'tsx', '--input-type=module', '-e', script],
    {
      cwd: path.resolve(import.meta.dirname, '..'),
      env: { ...process.env, TEST_ENV: JSON.stringify(env) },
    },
  )
  return JSON.parse(stdout.trim().split('\n').at(-1) ?? '{}')
}

describe('composition root', () => {
  let dataDir: string | undefined
  afterEach(async () => {
    if (dataDir) await rm(dataDir, { recursive: true, force: true })
  })

  it('on the embedded default, loads neither the PostgreSQL driver nor the RabbitMQ client', async () => {
    dataDir = await mkdtemp(path.join(tmpdir(), 'tessera-composition-'))
    expect(await modulesLoadedWith({ DATA_DIR: dataDir })).toEqual({
      pg: false,
      amqplib: false,
      sqlite: true,
    })
  })

  it.runIf(postgresAvailable())('on PostgreSQL with RabbitMQ, does not load the SQLite addon', async () => {
    const database = await createTestDatabase()
    try {
      const env = { DATABASE_URL: database.url, AMQP_URL: 'amqp://guest:guest@127.0.0.1:5672' }
      expect(await modulesLoadedWith(env)).toEqual({ pg: true, amqplib: true, sqlite: false })
    } finally {
      await database.drop()
    }
  })
})

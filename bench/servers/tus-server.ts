// The upload baseline: @tus/server (v2) with @tus/file-store, mounted on a bare Node http server.
import { createServer } from 'node:http'
import { FileStore } from '@tus/file-store'
import { Server } from '@tus/server'
import { serverMain } from '../lib/child.js'

interface Config {
  port: number
  directory: string
}

serverMain<Config>(async ({ port, directory }) => {
  const tus = new Server({ path: '/files', datastore: new FileStore({ directory }) })
  const server = createServer((request, response) => {
    void tus.handle(request, response)
  })
  await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve))
  return { close: () => new Promise<void>((resolve) => server.close(() => resolve())) }
})

// The download baseline: a bare Node http server streaming one file from disk with
// fs.createReadStream (default options), for any GET.
import { createReadStream } from 'node:fs'
import { stat } from 'node:fs/promises'
import { createServer } from 'node:http'
import { pipeline } from 'node:stream/promises'
import { serverMain } from '../lib/child.js'

interface Config {
  port: number
  file: string
}

serverMain<Config>(async ({ port, file }) => {
  const { size } = await stat(file)
  const server = createServer((request, response) => {
    if (request.method !== 'GET') {
      response.writeHead(405).end()
      return
    }
    response.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': String(size) })
    pipeline(createReadStream(file), response).catch(() => response.destroy())
  })
  await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve))
  return { close: () => new Promise<void>((resolve) => server.close(() => resolve())) }
})

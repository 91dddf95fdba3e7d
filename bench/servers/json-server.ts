// The listing baseline: a bare Node http server answering every GET with one precomputed
// JSON string (the body Tessera gave for the same folder).
import { readFile } from 'node:fs/promises'
import { createServer } from 'node:http'
import { serverMain } from '../lib/child.js'

interface Config {
  port: number
  bodyFile: string
}

serverMain<Config>(async ({ port, bodyFile }) => {
  const body = Buffer.from(await readFile(bodyFile, 'utf8'), 'utf8')
  const headers = { 'content-type': 'application/json; charset=utf-8', 'content-length': String(body.length) }
  const server = createServer((_request, response) => {
    response.writeHead(200, headers).end(body)
  })
  await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve))
  return { close: () => new Promise<void>((resolve) => server.close(() => resolve())) }
})

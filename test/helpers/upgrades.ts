import { randomBytes } from 'node:crypto'
import http from 'node:http'

export interface UpgradeAnswer {
  /** 101 when the socket was opened (it is closed again at once). */
  status: number
  retryAfter: string | undefined
  body: any
}

/**
 * One WebSocket handshake to `url` (http://...), as a plain client sends it: the status the
 * server answered, its Retry-After and its JSON body when it refused.
 */
export function upgrade(url: string, headers: Record<string, string> = {}): Promise<UpgradeAnswer> {
  return new Promise((resolve, reject) => {
    const request = http.get(url, {
      headers: {
        connection: 'Upgrade',
        upgrade: 'websocket',
        'sec-websocket-version': '13',
        'sec-websocket-key': randomBytes(16).toString('base64'),
        ...headers,
      },
    })
    request.once('upgrade', (response, socket) => {
      socket.destroy()
      resolve({ status: response.statusCode ?? 0, retryAfter: undefined, body: undefined })
    })
    request.once('response', (response) => {
      let text = ''
      response.setEncoding('utf8').on('data', (part: string) => {
        text += part
      })
      response.once('end', () => {
        const retryAfter = response.headers['retry-after']
        resolve({ status: response.statusCode ?? 0, retryAfter, body: text ? JSON.parse(text) : undefined })
      })
    })
    request.once('error', reject)
  })
}

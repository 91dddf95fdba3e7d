import net from 'node:net'

export interface TcpProxy {
  /** The port the proxy listens on, on 127.0.0.1. */
  readonly port: number
  /** How many connections it has passed on to the target so far (refused ones not counted). */
  readonly connections: number
  /** How many of them are open now. */
  readonly active: number
  /** `base` (a URL of the target) with its host and port replaced by the proxy's. */
  url(base: string): string
  /** Destroys every open connection, both ends, and refuses new ones until `restore`. */
  cut(): void
  /**
   * Destroys every open connection and from then on accepts new ones but passes nothing on and
   * answers nothing: a host that drops packets, where clients wait rather than fail. Until `restore`.
   */
  blackhole(): void
  /**
   * Like `blackhole`, but the open connections stay open, both ends, and simply stop carrying
   * bytes (a host that drops packets under connections already made, as a pool holds them).
   * `restore` lets them carry again what was held back.
   */
  freeze(): void
  /** Accepts connections again. */
  restore(): void
  /** Cuts everything and stops listening. */
  close(): Promise<void>
}

/** A client's connection and the one it was passed on to, with what `freeze` held back of each. */
interface Pair {
  client: net.Socket
  upstream: net.Socket
  held: { toUpstream: Buffer[]; toClient: Buffer[] }
}

/**
 * A TCP proxy to `target`, for tests that take a service away from a client and give it back:
 * `cut()` is a broker (or database) that went away, `restore()` one that came back. It keeps
 * listening while cut and destroys new connections at once, so the port stays the same (a
 * listener closed and opened again could find it taken) and clients fail fast instead of hanging.
 */
export async function startTcpProxy(target: { host: string; port: number }): Promise<TcpProxy> {
  const sockets = new Set<net.Socket>()
  const clients = new Set<net.Socket>()
  const pairs = new Set<Pair>()
  const hold = (into: Buffer[]) => (bytes: Buffer) => {
    into.push(bytes)
  }
  let accepting = true
  let swallowing = false
  let connections = 0

  const track = (socket: net.Socket) => {
    sockets.add(socket)
    socket.on('close', () => sockets.delete(socket))
  }

  const server = net.createServer((client) => {
    if (!accepting) {
      client.destroy()
      return
    }
    if (swallowing) {
      // Held open, read and ignored; destroyed at the next cut or close.
      track(client)
      client.on('error', () => {}).resume()
      return
    }
    connections += 1
    const upstream = net.connect(target.port, target.host)
    track(client)
    track(upstream)
    clients.add(client)
    client.on('close', () => clients.delete(client))
    // Either end's failure ends both, as a network cut would for the client.
    const end = () => {
      client.destroy()
      upstream.destroy()
    }
    client.on('error', end).on('close', end)
    upstream.on('error', end).on('close', end)
    const pair: Pair = { client, upstream, held: { toUpstream: [], toClient: [] } }
    pairs.add(pair)
    client.on('close', () => pairs.delete(pair))
    forward(pair)
  })

  const forward = ({ client, upstream }: Pair) => {
    client.pipe(upstream)
    upstream.pipe(client)
  }

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(0, '127.0.0.1', () => resolve())
  })
  const address = server.address()
  if (address === null || typeof address === 'string') throw new Error('proxy has no TCP address')
  const { port } = address

  const cut = () => {
    accepting = false
    for (const socket of sockets) socket.destroy()
  }

  return {
    port,
    get connections() {
      return connections
    },
    get active() {
      return clients.size
    },
    url(base) {
      const url = new URL(base)
      url.hostname = '127.0.0.1'
      url.port = String(port)
      return url.toString()
    },
    cut,
    blackhole() {
      for (const socket of sockets) socket.destroy()
      swallowing = true
    },
    freeze() {
      swallowing = true
      for (const pair of pairs) {
        // Still read (so that either end closing is seen, as the kernel would), but held back.
        pair.client.unpipe(pair.upstream).on('data', hold(pair.held.toUpstream)).resume()
        pair.upstream.unpipe(pair.client).on('data', hold(pair.held.toClient)).resume()
      }
    },
    restore() {
      accepting = true
      if (swallowing) {
        for (const pair of pairs) {
          pair.client.removeAllListeners('data')
          pair.upstream.removeAllListeners('data')
          if (pair.client.destroyed || pair.upstream.destroyed) continue
          for (const bytes of pair.held.toUpstream.splice(0)) pair.upstream.write(bytes)
          for (const bytes of pair.held.toClient.splice(0)) pair.client.write(bytes)
          forward(pair)
        }
      }
      swallowing = false
    },
    close() {
      cut()
      return new Promise((resolve, reject) => server.close((error) => (error ? reject(error) : resolve())))
    },
  }
}

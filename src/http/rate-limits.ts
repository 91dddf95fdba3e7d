import type { FastifyInstance, FastifyRequest } from 'fastify'
import { addressKey } from '../domain/client-address.js'
import { AppError } from '../domain/errors.js'
import type { Authenticated } from '../services/auth-service.js'

const WINDOW_MS = 60_000

declare module 'fastify' {
  interface FastifyContextConfig {
    /**
     * A public route's own budget of requests per minute per client address (login and
     * register, the anonymous link routes); routes naming the same `bucket` share one budget.
     */
    addressLimit?: { bucket: string; perMinute: number }
  }
}

/** Where request counts live: in this process for now; shared by every API node (Redis) later. */
export interface RateLimitStore {
  /**
   * Counts one request against `key` in its current fixed window of `windowMs`, opening a new
   * window when there is none or the last one is over. Answers the count in the window so far,
   * this request included, and how long until the window ends.
   */
  hit(key: string, windowMs: number): Promise<{ count: number; msLeft: number }>
}

/** One node's counts, in a map swept of finished windows about once a window. */
export class MemoryRateLimitStore implements RateLimitStore {
  readonly #windows = new Map<string, { count: number; endsAt: number }>()
  #nextSweep = 0

  constructor(private readonly now: () => number = Date.now) {}

  async hit(key: string, windowMs: number): Promise<{ count: number; msLeft: number }> {
    const now = this.now()
    if (now >= this.#nextSweep) {
      // Without this, every address ever seen would stay in memory.
      for (const [seen, window] of this.#windows) if (window.endsAt <= now) this.#windows.delete(seen)
      this.#nextSweep = now + windowMs
    }
    let window = this.#windows.get(key)
    if (!window || window.endsAt <= now) {
      window = { count: 0, endsAt: now + windowMs }
      this.#windows.set(key, window)
    }
    window.count += 1
    return { count: window.count, msLeft: window.endsAt - now }
  }
}

export interface RateLimitOptions {
  /** Requests per minute of one signed-in user, over all routes and tokens; 0: no limit. */
  perUserPerMinute: number
  /**
   * Requests per minute from one address without a valid session: public routes without a
   * budget of their own, unknown routes, and every request whose authentication fails; 0: no limit.
   */
  unauthenticatedPerAddressPerMinute: number
  store?: RateLimitStore
}

export interface RateLimits {
  /**
   * Runs `authenticate` (the request's session check) and counts the request against what it
   * proved: the user's budget when it succeeded; the address's unauthenticated budget when it
   * failed, answering 429 instead of 401 once that is spent.
   */
  authenticate(request: FastifyRequest, authenticate: () => Promise<Authenticated>): Promise<Authenticated>
  /**
   * The same for a request Fastify never sees (the sync socket's upgrade), from the client
   * address `ip` (as `request.ip` would be).
   */
  authenticateFrom<T extends Authenticated>(ip: string, authenticate: () => Promise<T>): Promise<T>
  /** Counts a request for no route from `ip` against its unauthenticated budget (429 once spent). */
  countUnknownRoute(ip: string): Promise<void>
}

/**
 * Rate limits keyed only on what the server has verified: the signed-in user, or the client
 * address (`request.ip`, which honours TRUST_PROXY). Never on an unverified header: a made-up
 * `Authorization` value must not buy a fresh budget. Public routes are counted here, before
 * anything else runs; the rest once authentication has said whose request it is.
 */
export function installRateLimits(app: FastifyInstance, options: RateLimitOptions): RateLimits {
  const store = options.store ?? new MemoryRateLimitStore()
  const take = async (key: string, perMinute: number): Promise<void> => {
    if (perMinute <= 0) return
    const { count, msLeft } = await store.hit(key, WINDOW_MS)
    if (count > perMinute) {
      throw new AppError('RATE_LIMITED', 'too many requests, slow down', {
        retryAfterSeconds: Math.max(1, Math.ceil(msLeft / 1000)),
      })
    }
  }
  const takeUnauthenticated = (ip: string) =>
    take(`address:${addressKey(ip)}`, options.unauthenticatedPerAddressPerMinute)
  const authenticateFrom = async <T extends Authenticated>(ip: string, authenticate: () => Promise<T>) => {
    let auth: T
    try {
      auth = await authenticate()
    } catch (error) {
      if (error instanceof AppError && error.code === 'UNAUTHORIZED') await takeUnauthenticated(ip)
      throw error
    }
    await take(`user:${auth.user.id}`, options.perUserPerMinute)
    return auth
  }

  app.addHook('onRequest', async (request) => {
    const { addressLimit, public: isPublic } = request.routeOptions.config
    if (addressLimit) {
      await take(`${addressLimit.bucket}:${addressKey(request.ip)}`, addressLimit.perMinute)
    } else if (isPublic || request.is404) {
      await takeUnauthenticated(request.ip)
    }
  })

  return {
    authenticate: (request, authenticate) => authenticateFrom(request.ip, authenticate),
    authenticateFrom,
    countUnknownRoute: takeUnauthenticated,
  }
}

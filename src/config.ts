import path from 'node:path'
import { DEFAULT_CHUNK_SIZE, DEFAULT_MIN_CHUNK_SIZE } from './domain/chunk-plan.js'
import { DEFAULT_RETENTION, type RetentionPolicy } from './domain/retention.js'

export interface Config {
  http: {
    port: number
    host: string
    bodyLimitBytes: number
    /** A request body that sends nothing for this long while it is read is answered 408. */
    bodyIdleTimeoutMs: number
    trustProxy: boolean
    /** Connections open at once over all clients; 0: no limit. */
    maxConnections: number
    /** Connections one client address may hold open (not applied with TRUST_PROXY); 0: no limit. */
    maxConnectionsPerAddress: number
    /** Requests per minute per signed-in user; 0: no limit. */
    requestRateLimitPerMinute: number
    /** Requests per minute per address without a valid session (401s, health checks); 0: no limit. */
    anonymousRateLimitPerMinute: number
    /** The public address link URLs use (PUBLIC_URL), when not the request's own host. */
    publicUrl?: string
  }
  shares: {
    /** Requests per minute per address on the anonymous link routes. */
    rateLimitPerMinute: number
    /** Wrong passwords a link takes per window before it answers 429. */
    passwordAttempts: number
    /** How many of those one client address (IPv6: its /64) may use. */
    passwordAttemptsPerAddress: number
    passwordWindowMs: number
  }
  db:
    | { kind: 'sqlite'; file: string }
    | {
        kind: 'postgres'
        url: string
        /** How long a request waits for a database connection before it answers 503. */
        connectTimeoutMs: number
        /**
         * How long one query may wait for its answer on an open connection before it fails
         * (503) and the connection is dropped: a host that silently drops packets.
         */
        queryTimeoutMs: number
      }
  blobs: { kind: 'disk'; root: string }
  /** How change events reach the other API nodes. */
  bus: { kind: 'local' } | { kind: 'amqp'; url: string }
  sync: {
    /** Journal entries older than this are compacted (a cursor before them answers 410). */
    journalRetentionMs: number
    /** Journal entries kept per user at most. */
    journalMaxEntries: number
    pingIntervalMs: number
    /** Unsent bytes a sync socket may queue before it is dropped as too slow. */
    maxBufferedBytes: number
    /** How long a sync socket may take to read what is queued for it before it is dropped. */
    slowClientMs: number
    maxSocketsPerUser: number
    /** Long polls one user may hold open on this node; one more answers 429. */
    maxLongPollsPerUser: number
    /**
     * How often every watcher reads its journal even without news: bounds how late a change
     * arrives whose event was lost (its node died between commit and publish).
     */
    resyncIntervalMs: number
  }
  auth: {
    sessionTtlMs: number
    sessionCacheMs: number
    defaultQuotaBytes: number
    loginRateLimitPerMinute: number
    passwordHashing: { memoryKiB: number; passes: number }
  }
  uploads: {
    sessionTtlMs: number
    sweepIntervalMs: number
    /** Upload sessions one user may have open at once; one more is 429. */
    maxOpenSessions: number
    /** Every declared chunk but a file's last is at least this large (UPLOAD_MIN_CHUNK_BYTES). */
    minChunkBytes: number
  }
  /** Version history kept per file. */
  versions: RetentionPolicy
  trash: { retentionMs: number }
  gc: {
    graceMs: number
    /** How often the collector, trash emptying and history pruning run in the server; 0: never. */
    intervalMs: number
    /** How often a run also walks the blob store for orphaned bytes. */
    orphanScanIntervalMs: number
  }
  logLevel: string
}

const GiB = 1024 ** 3
const SECOND = 1000
const HOUR = 3600_000
const DAY = 24 * HOUR

/**
 * Reads the configuration from the environment (API.md, "Configuration"). Pure: takes `env`
 * as an argument, so tests pass their own. Throws one error listing every bad variable.
 */
export function loadConfig(env: Record<string, string | undefined> = process.env): Config {
  const problems: string[] = []
  const int = (name: string, fallback: number, min = 0): number => {
    const raw = env[name]
    if (raw === undefined || raw === '') return fallback
    const value = Number(raw)
    if (!Number.isSafeInteger(value) || value < min) {
      problems.push(`${name} must be an integer >= ${min} (got "${raw}")`)
      return fallback
    }
    return value
  }

  const flag = (name: string, fallback: boolean): boolean => {
    const raw = env[name]?.toLowerCase()
    if (raw === undefined || raw === '') return fallback
    if (['1', 'true', 'on', 'yes'].includes(raw)) return true
    if (['0', 'false', 'off', 'no'].includes(raw)) return false
    problems.push(`${name} must be true or false (got "${env[name]}")`)
    return fallback
  }

  const dataDir = path.resolve(env.DATA_DIR || './data')
  const databaseUrl = env.DATABASE_URL
  if (env.PUBLIC_URL && !/^https?:\/\/[^/]+/.test(env.PUBLIC_URL)) {
    problems.push('PUBLIC_URL must be an http:// or https:// address')
  }
  if (databaseUrl && !/^postgres(ql)?:\/\//.test(databaseUrl)) {
    problems.push('DATABASE_URL must start with postgres:// or postgresql://')
  }
  const amqpUrl = env.AMQP_URL
  if (amqpUrl && !/^amqps?:\/\//.test(amqpUrl)) problems.push('AMQP_URL must start with amqp:// or amqps://')
  if (env.S3_ENDPOINT || env.S3_BUCKET) {
    problems.push('S3 chunk storage (S3_ENDPOINT, S3_BUCKET) is not available in this version; unset them')
  }

  const sharePasswordAttempts = int('SHARE_PASSWORD_ATTEMPTS', 10, 1)
  // Half the link's budget by default: one address alone cannot lock the link's other visitors out.
  const sharePasswordAttemptsPerAddress = int(
    'SHARE_PASSWORD_ATTEMPTS_PER_ADDRESS',
    Math.ceil(sharePasswordAttempts / 2),
    1,
  )
  if (sharePasswordAttemptsPerAddress > sharePasswordAttempts) {
    problems.push('SHARE_PASSWORD_ATTEMPTS_PER_ADDRESS must not exceed SHARE_PASSWORD_ATTEMPTS')
  }

  // At most the fixed chunk size: a declaration without chunkSizes is cut into chunks of that size.
  const uploadMinChunkBytes = int('UPLOAD_MIN_CHUNK_BYTES', DEFAULT_MIN_CHUNK_SIZE, 1)
  if (uploadMinChunkBytes > DEFAULT_CHUNK_SIZE) {
    problems.push(`UPLOAD_MIN_CHUNK_BYTES must be at most ${DEFAULT_CHUNK_SIZE} (the fixed chunk size)`)
  }

  const config: Config = {
    http: {
      port: int('PORT', 8080, 0),
      host: env.HOST || '0.0.0.0',
      bodyLimitBytes: int('BODY_LIMIT_BYTES', 1024 * 1024, 1024),
      bodyIdleTimeoutMs: int('BODY_IDLE_TIMEOUT_SECONDS', 30, 1) * SECOND,
      // Validated like every flag: a TRUST_PROXY of "yes" read as off would key every rate limit
      // and the link password allowance on the proxy's address.
      trustProxy: flag('TRUST_PROXY', false),
      maxConnections: int('MAX_CONNECTIONS', 10_000, 0),
      maxConnectionsPerAddress: int('MAX_CONNECTIONS_PER_ADDRESS', 256, 0),
      requestRateLimitPerMinute: int('RATE_LIMIT_PER_MINUTE', 12_000, 0),
      anonymousRateLimitPerMinute: int('ANON_RATE_LIMIT_PER_MINUTE', 600, 0),
      publicUrl: env.PUBLIC_URL ? env.PUBLIC_URL.replace(/\/+$/, '') : undefined,
    },
    shares: {
      rateLimitPerMinute: int('SHARE_RATE_LIMIT_PER_MINUTE', 120, 1),
      passwordAttempts: sharePasswordAttempts,
      passwordAttemptsPerAddress: sharePasswordAttemptsPerAddress,
      passwordWindowMs: int('SHARE_PASSWORD_WINDOW_MINUTES', 15, 1) * 60_000,
    },
    db: databaseUrl
      ? {
          kind: 'postgres',
          url: databaseUrl,
          connectTimeoutMs: int('DATABASE_CONNECT_TIMEOUT_SECONDS', 10, 1) * SECOND,
          queryTimeoutMs: int('DATABASE_QUERY_TIMEOUT_SECONDS', 60, 1) * SECOND,
        }
      : { kind: 'sqlite', file: path.join(dataDir, 'tessera.db') },
    blobs: { kind: 'disk', root: path.join(dataDir, 'chunks') },
    bus: amqpUrl ? { kind: 'amqp', url: amqpUrl } : { kind: 'local' },
    sync: {
      // A device offline for a month still catches up entry by entry; older cursors list anew.
      journalRetentionMs: int('JOURNAL_RETENTION_DAYS', 30, 1) * DAY,
      journalMaxEntries: int('JOURNAL_MAX_ENTRIES', 100_000, 100),
      pingIntervalMs: int('SYNC_PING_SECONDS', 30, 1) * SECOND,
      maxBufferedBytes: int('SYNC_MAX_BUFFERED_KIB', 256, 16) * 1024,
      slowClientMs: int('SYNC_SLOW_CLIENT_SECONDS', 30, 1) * SECOND,
      maxSocketsPerUser: int('SYNC_MAX_SOCKETS_PER_USER', 20, 1),
      maxLongPollsPerUser: int('SYNC_MAX_LONGPOLLS_PER_USER', 20, 1),
      resyncIntervalMs: int('SYNC_RESYNC_SECONDS', 60, 1) * SECOND,
    },
    auth: {
      sessionTtlMs: int('SESSION_TTL_HOURS', 24 * 30, 1) * HOUR,
      // How long an API node trusts a session it checked: bounds how late a logout made on
      // another node takes effect here.
      sessionCacheMs: int('SESSION_CACHE_MS', 5_000, 0),
      defaultQuotaBytes: int('DEFAULT_QUOTA_BYTES', 10 * GiB, 0),
      loginRateLimitPerMinute: int('LOGIN_RATE_LIMIT_PER_MINUTE', 20, 1),
      // OWASP's argon2id minimum (19 MiB, 2 passes) by default.
      passwordHashing: {
        memoryKiB: int('ARGON2_MEMORY_KIB', 19 * 1024, 1024),
        passes: int('ARGON2_PASSES', 2, 1),
      },
    },
    uploads: {
      sessionTtlMs: int('UPLOAD_TTL_HOURS', 24, 1) * HOUR,
      sweepIntervalMs: int('UPLOAD_SWEEP_INTERVAL_SECONDS', 600, 1) * 1000,
      maxOpenSessions: int('UPLOAD_MAX_OPEN_SESSIONS', 100, 1),
      minChunkBytes: uploadMinChunkBytes,
    },
    versions: {
      maxVersions: int('VERSION_MAX_COUNT', DEFAULT_RETENTION.maxVersions, 1),
      maxAgeMs: int('VERSION_MAX_AGE_DAYS', DEFAULT_RETENTION.maxAgeMs / DAY, 0) * DAY,
      thin: flag('VERSION_THINNING', DEFAULT_RETENTION.thin),
    },
    trash: { retentionMs: int('TRASH_RETENTION_DAYS', 30, 0) * DAY },
    gc: {
      // At least a minute: the least time a download of a version pruned meanwhile still finds its
      // bytes, and that another collector's claims are left to it before they count as abandoned.
      graceMs: int('GC_GRACE_SECONDS', 3600, 60) * SECOND,
      intervalMs: int('GC_INTERVAL_SECONDS', 3600, 0) * SECOND,
      orphanScanIntervalMs: int('GC_ORPHAN_SCAN_HOURS', 24, 1) * HOUR,
    },
    logLevel: logLevel(env.LOG_LEVEL, problems),
  }
  if (problems.length > 0) throw new Error(`Invalid configuration:\n- ${problems.join('\n- ')}`)
  return config
}

const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']

/** LOG_LEVEL as pino names its levels; anything else is a problem reported with the rest. */
function logLevel(raw: string | undefined, problems: string[]): string {
  if (raw === undefined || raw === '') return 'info'
  if (LOG_LEVELS.includes(raw)) return raw
  problems.push(`LOG_LEVEL must be one of ${LOG_LEVELS.join(', ')} (got "${raw}")`)
  return 'info'
}

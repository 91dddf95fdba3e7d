import path from 'node:path'
import { type FlagVariable, type IntegerVariable, VARIABLES, type VariableName } from './config-variables.js'
import type { RetentionPolicy } from './domain/retention.js'

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

const SECOND = 1000
const MINUTE = 60 * SECOND
const HOUR = 60 * MINUTE
const DAY = 24 * HOUR

/**
 * Reads the configuration from the environment (API.md, "Configuration"; the variables, their
 * defaults and bounds are in config-variables.ts). Pure: takes `env` as an argument, so tests
 * pass their own. Throws one error listing every bad variable.
 */
export function loadConfig(env: Record<string, string | undefined> = process.env): Config {
  const problems: string[] = []
  const read = readers(env, problems)
  const { int, flag } = read
  const config: Config = {
    http: httpConfig(read),
    shares: sharesConfig(read),
    ...storageConfig(read),
    sync: syncConfig(read),
    auth: {
      sessionTtlMs: int('SESSION_TTL_HOURS') * HOUR,
      sessionCacheMs: int('SESSION_CACHE_MS'),
      defaultQuotaBytes: int('DEFAULT_QUOTA_BYTES'),
      loginRateLimitPerMinute: int('LOGIN_RATE_LIMIT_PER_MINUTE'),
      passwordHashing: { memoryKiB: int('ARGON2_MEMORY_KIB'), passes: int('ARGON2_PASSES') },
    },
    uploads: {
      sessionTtlMs: int('UPLOAD_TTL_HOURS') * HOUR,
      sweepIntervalMs: int('UPLOAD_SWEEP_INTERVAL_SECONDS') * SECOND,
      maxOpenSessions: int('UPLOAD_MAX_OPEN_SESSIONS'),
      minChunkBytes: int('UPLOAD_MIN_CHUNK_BYTES'),
    },
    versions: {
      maxVersions: int('VERSION_MAX_COUNT'),
      maxAgeMs: int('VERSION_MAX_AGE_DAYS') * DAY,
      thin: flag('VERSION_THINNING'),
    },
    trash: { retentionMs: int('TRASH_RETENTION_DAYS') * DAY },
    gc: {
      graceMs: int('GC_GRACE_SECONDS') * SECOND,
      intervalMs: int('GC_INTERVAL_SECONDS') * SECOND,
      orphanScanIntervalMs: int('GC_ORPHAN_SCAN_HOURS') * HOUR,
    },
    logLevel: logLevel(read),
  }
  if (problems.length > 0) throw new Error(`Invalid configuration:\n- ${problems.join('\n- ')}`)
  return config
}

function httpConfig({ int, flag, text, problem }: Readers): Config['http'] {
  const publicUrl = text('PUBLIC_URL')
  if (publicUrl && !/^https?:\/\/[^/]+/.test(publicUrl))
    problem('PUBLIC_URL must be an http:// or https:// address')
  return {
    port: int('PORT'),
    host: text('HOST') || '0.0.0.0',
    bodyLimitBytes: int('BODY_LIMIT_BYTES'),
    bodyIdleTimeoutMs: int('BODY_IDLE_TIMEOUT_SECONDS') * SECOND,
    trustProxy: flag('TRUST_PROXY'),
    maxConnections: int('MAX_CONNECTIONS'),
    maxConnectionsPerAddress: int('MAX_CONNECTIONS_PER_ADDRESS'),
    requestRateLimitPerMinute: int('RATE_LIMIT_PER_MINUTE'),
    anonymousRateLimitPerMinute: int('ANON_RATE_LIMIT_PER_MINUTE'),
    publicUrl: publicUrl ? publicUrl.replace(/\/+$/, '') : undefined,
  }
}

function sharesConfig({ int, problem }: Readers): Config['shares'] {
  const passwordAttempts = int('SHARE_PASSWORD_ATTEMPTS')
  const passwordAttemptsPerAddress = int('SHARE_PASSWORD_ATTEMPTS_PER_ADDRESS', {
    fallback: Math.ceil(passwordAttempts / 2),
  })
  if (passwordAttemptsPerAddress > passwordAttempts) {
    problem('SHARE_PASSWORD_ATTEMPTS_PER_ADDRESS must not exceed SHARE_PASSWORD_ATTEMPTS')
  }
  return {
    rateLimitPerMinute: int('SHARE_RATE_LIMIT_PER_MINUTE'),
    passwordAttempts,
    passwordAttemptsPerAddress,
    passwordWindowMs: int('SHARE_PASSWORD_WINDOW_MINUTES') * MINUTE,
  }
}

/** Where metadata, chunks and change events go: the embedded default unless a URL is given. */
function storageConfig({ int, text, problem }: Readers): Pick<Config, 'db' | 'blobs' | 'bus'> {
  const databaseUrl = text('DATABASE_URL')
  if (databaseUrl && !/^postgres(ql)?:\/\//.test(databaseUrl)) {
    problem('DATABASE_URL must start with postgres:// or postgresql://')
  }
  const amqpUrl = text('AMQP_URL')
  if (amqpUrl && !/^amqps?:\/\//.test(amqpUrl)) problem('AMQP_URL must start with amqp:// or amqps://')
  if (text('S3_ENDPOINT') || text('S3_BUCKET')) {
    problem('S3 chunk storage (S3_ENDPOINT, S3_BUCKET) is not available in this version; unset them')
  }
  const dataDir = path.resolve(text('DATA_DIR') || './data')
  return {
    db: databaseUrl
      ? {
          kind: 'postgres',
          url: databaseUrl,
          connectTimeoutMs: int('DATABASE_CONNECT_TIMEOUT_SECONDS') * SECOND,
          queryTimeoutMs: int('DATABASE_QUERY_TIMEOUT_SECONDS') * SECOND,
        }
      : { kind: 'sqlite', file: path.join(dataDir, 'tessera.db') },
    blobs: { kind: 'disk', root: path.join(dataDir, 'chunks') },
    bus: amqpUrl ? { kind: 'amqp', url: amqpUrl } : { kind: 'local' },
  }
}

function syncConfig({ int }: Readers): Config['sync'] {
  return {
    journalRetentionMs: int('JOURNAL_RETENTION_DAYS') * DAY,
    journalMaxEntries: int('JOURNAL_MAX_ENTRIES'),
    pingIntervalMs: int('SYNC_PING_SECONDS') * SECOND,
    maxBufferedBytes: int('SYNC_MAX_BUFFERED_KIB') * 1024,
    slowClientMs: int('SYNC_SLOW_CLIENT_SECONDS') * SECOND,
    maxSocketsPerUser: int('SYNC_MAX_SOCKETS_PER_USER'),
    maxLongPollsPerUser: int('SYNC_MAX_LONGPOLLS_PER_USER'),
    resyncIntervalMs: int('SYNC_RESYNC_SECONDS') * SECOND,
  }
}

type IntegerName = {
  [N in VariableName]: (typeof VARIABLES)[N] extends IntegerVariable ? N : never
}[VariableName]
type FlagName = { [N in VariableName]: (typeof VARIABLES)[N] extends FlagVariable ? N : never }[VariableName]

/**
 * Parsers for the three kinds of variable, each taking its default and bounds from the table
 * and adding what it cannot read to `problems` (answering the default, so loading goes on and
 * every problem is reported at once).
 */
function readers(env: Record<string, string | undefined>, problems: string[]) {
  const raw = (name: VariableName): string | undefined => (env[name] === '' ? undefined : env[name])
  const int = (name: IntegerName, { fallback }: { fallback?: number } = {}): number => {
    const variable: IntegerVariable = VARIABLES[name]
    const value = raw(name)
    const byDefault = fallback ?? variable.default
    if (value === undefined) return byDefault
    const parsed = Number(value)
    if (!Number.isSafeInteger(parsed) || parsed < variable.min) {
      problems.push(`${name} must be an integer >= ${variable.min} (got "${value}")`)
      return byDefault
    }
    if (variable.max !== undefined && parsed > variable.max) {
      problems.push(`${name} must be at most ${variable.max} (got "${value}")`)
      return byDefault
    }
    return parsed
  }
  const flag = (name: FlagName): boolean => {
    const value = raw(name)?.toLowerCase()
    if (value === undefined) return VARIABLES[name].default
    if (['1', 'true', 'on', 'yes'].includes(value)) return true
    if (['0', 'false', 'off', 'no'].includes(value)) return false
    problems.push(`${name} must be true or false (got "${raw(name)}")`)
    return VARIABLES[name].default
  }
  return { int, flag, text: raw, problem: (message: string) => problems.push(message) }
}

type Readers = ReturnType<typeof readers>

const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']

/** LOG_LEVEL as pino names its levels; anything else is a problem reported with the rest. */
function logLevel({ text, problem }: Readers): string {
  const raw = text('LOG_LEVEL')
  if (raw === undefined) return 'info'
  if (LOG_LEVELS.includes(raw)) return raw
  problem(`LOG_LEVEL must be one of ${LOG_LEVELS.join(', ')} (got "${raw}")`)
  return 'info'
}

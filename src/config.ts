import path from 'node:path'

export interface Config {
  http: {
    port: number
    host: string
    bodyLimitBytes: number
    trustProxy: boolean
    requestRateLimitPerMinute: number
  }
  db: { kind: 'sqlite'; file: string } | { kind: 'postgres'; url: string }
  blobs: { kind: 'disk'; root: string }
  auth: {
    sessionTtlMs: number
    sessionCacheMs: number
    defaultQuotaBytes: number
    loginRateLimitPerMinute: number
    passwordHashing: { memoryKiB: number; passes: number }
  }
  uploads: { sessionTtlMs: number; sweepIntervalMs: number }
  logLevel: string
}

const GiB = 1024 ** 3
const HOUR = 3600_000

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

  const dataDir = path.resolve(env.DATA_DIR || './data')
  const databaseUrl = env.DATABASE_URL
  if (databaseUrl && !/^postgres(ql)?:\/\//.test(databaseUrl)) {
    problems.push('DATABASE_URL must start with postgres:// or postgresql://')
  }
  if (env.S3_ENDPOINT || env.S3_BUCKET) {
    problems.push('S3 chunk storage (S3_ENDPOINT, S3_BUCKET) is not available in this version; unset them')
  }

  const config: Config = {
    http: {
      port: int('PORT', 8080, 0),
      host: env.HOST || '0.0.0.0',
      bodyLimitBytes: int('BODY_LIMIT_BYTES', 1024 * 1024, 1024),
      trustProxy: env.TRUST_PROXY === '1' || env.TRUST_PROXY === 'true',
      requestRateLimitPerMinute: int('RATE_LIMIT_PER_MINUTE', 12_000, 0),
    },
    db: databaseUrl
      ? { kind: 'postgres', url: databaseUrl }
      : { kind: 'sqlite', file: path.join(dataDir, 'tessera.db') },
    blobs: { kind: 'disk', root: path.join(dataDir, 'chunks') },
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
    },
    logLevel: env.LOG_LEVEL || 'info',
  }
  if (problems.length > 0) throw new Error(`Invalid configuration:\n- ${problems.join('\n- ')}`)
  return config
}

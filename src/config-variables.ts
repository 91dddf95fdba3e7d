import { DEFAULT_CHUNK_SIZE } from './domain/chunk-plan.js'

/**
 * Every environment variable the server reads, with its default, its bounds and what it does:
 * the one table that `loadConfig` takes its defaults from and that the README's table is
 * generated from (`npm run docs:config`; src/config.test.ts fails when the two differ), so the
 * documentation cannot drift from the code.
 */

interface Described {
  /** What it changes, as the README says it. */
  effect: string
  /** The README's "unset" column, when the default alone does not say it. */
  unset?: string
}

export interface IntegerVariable extends Described {
  type: 'integer'
  default: number
  min: number
  max?: number
}

export interface FlagVariable extends Described {
  type: 'flag'
  default: boolean
}

export interface TextVariable extends Described {
  type: 'text'
  unset: string
}

export type Variable = IntegerVariable | FlagVariable | TextVariable

const integer = (min: number, fallback: number, effect: string, unset?: string): IntegerVariable => ({
  type: 'integer',
  default: fallback,
  min,
  effect,
  unset,
})
const flag = (fallback: boolean, effect: string, unset?: string): FlagVariable => ({
  type: 'flag',
  default: fallback,
  effect,
  unset,
})
const text = (effect: string, unset: string): TextVariable => ({ type: 'text', effect, unset })

const GiB = 1024 ** 3

export const VARIABLES = {
  PORT: integer(0, 8080, 'the port to listen on'),
  HOST: text('the address to listen on', '`0.0.0.0`'),
  DATA_DIR: text('embedded data: `tessera.db` (SQLite, WAL) and `chunks/`', '`./data`'),
  DATABASE_URL: text('`postgres://…`: metadata in PostgreSQL (migrated on start)', 'SQLite in `DATA_DIR`'),
  DATABASE_CONNECT_TIMEOUT_SECONDS: integer(
    1,
    10,
    'how long a request waits for a PostgreSQL connection before it answers 503',
  ),
  DATABASE_QUERY_TIMEOUT_SECONDS: integer(
    1,
    60,
    'a PostgreSQL query unanswered this long answers 503 (migrations: no limit)',
  ),
  AMQP_URL: text('`amqp://…`: change events between API nodes through RabbitMQ', 'in-process'),
  S3_ENDPOINT: text('scaled mode (a later issue): refused for now, with `S3_BUCKET`', 'chunks in `DATA_DIR`'),
  S3_BUCKET: text('scaled mode (a later issue): refused for now, with `S3_ENDPOINT`', 'chunks in `DATA_DIR`'),
  DEFAULT_QUOTA_BYTES: integer(0, 10 * GiB, 'quota of new accounts', '10 GiB'),
  SESSION_TTL_HOURS: integer(1, 24 * 30, 'how long a login session lasts'),
  SESSION_CACHE_MS: integer(
    0,
    5000,
    'how long a node trusts a session it checked: a logout elsewhere lags this',
  ),
  UPLOAD_TTL_HOURS: integer(1, 24, 'how long an upload session lasts'),
  UPLOAD_SWEEP_INTERVAL_SECONDS: integer(
    1,
    600,
    'how often expired upload sessions are removed (their quota released)',
  ),
  UPLOAD_MAX_OPEN_SESSIONS: integer(
    1,
    100,
    'upload sessions one user may have open; one more is 429 `TOO_MANY_UPLOADS`',
  ),
  // The work of a download, a complete and a declaration grows with a file's chunks, not its
  // bytes: without a floor, 65,536 one-byte chunks of one hash (one 1-byte PUT, 64 KiB of quota)
  // made a file whose downloads took over a minute and held up every other request. With it, a
  // file's chunk count is bounded by what it charges to the quota.
  UPLOAD_MIN_CHUNK_BYTES: {
    ...integer(
      1,
      64 * 1024,
      'least size of a declared chunk but the last (see Upload sessions)',
      '65536 (64 KiB)',
    ),
    // At most the fixed chunk size: a declaration without chunkSizes is cut into chunks of that size.
    max: DEFAULT_CHUNK_SIZE,
  },
  RATE_LIMIT_PER_MINUTE: integer(
    0,
    12_000,
    'requests per signed-in user (all sessions) per minute; `0` turns it off',
  ),
  ANON_RATE_LIMIT_PER_MINUTE: integer(
    0,
    600,
    'requests per address per minute without a valid session; `0`: off',
  ),
  LOGIN_RATE_LIMIT_PER_MINUTE: integer(1, 20, 'register/login attempts per address per minute'),
  BODY_LIMIT_BYTES: integer(1024, 1024 * 1024, 'largest JSON body (upload init allows 8 MiB)', '1 MiB'),
  BODY_IDLE_TIMEOUT_SECONDS: integer(1, 30, 'a request body that sends nothing this long is answered 408'),
  ARGON2_MEMORY_KIB: integer(1024, 19 * 1024, 'argon2id memory cost', '19456 (OWASP minimum)'),
  ARGON2_PASSES: integer(1, 2, 'argon2id passes', '2 (OWASP minimum)'),
  // Validated like every flag: a TRUST_PROXY of "yse" read as off would key every rate limit and
  // the link password allowance on the proxy's address.
  TRUST_PROXY: flag(false, '`1` behind nginx, so client addresses come from `X-Forwarded-For`', 'off'),
  MAX_CONNECTIONS: integer(0, 10_000, 'connections open at once; one more is closed; `0`: no limit'),
  MAX_CONNECTIONS_PER_ADDRESS: integer(
    0,
    256,
    'connections per client address (not with `TRUST_PROXY`); more: 429; `0`: off',
  ),
  VERSION_MAX_COUNT: integer(1, 100, 'versions kept per file (the current one included)'),
  VERSION_MAX_AGE_DAYS: integer(0, 30, 'older versions are dropped (`0`: no age limit)'),
  VERSION_THINNING: flag(true, 'thin history: all of the last hour, then hourly, daily, weekly', 'on'),
  TRASH_RETENTION_DAYS: integer(0, 30, 'the trash is emptied of items deleted longer ago (`0`: never)'),
  // At least a minute: the least time a download of a version pruned meanwhile still finds its
  // bytes, and that another collector's claims are left to it before they count as abandoned.
  GC_GRACE_SECONDS: integer(60, 3600, 'how long a chunk stays unreferenced before the collector deletes it'),
  GC_INTERVAL_SECONDS: integer(0, 3600, 'how often upkeep runs, on one node at a time (`0`: never)'),
  GC_ORPHAN_SCAN_HOURS: integer(1, 24, 'how often upkeep also walks the chunk store for orphaned bytes'),
  // A device offline for a month still catches up entry by entry; older cursors list anew.
  JOURNAL_RETENTION_DAYS: integer(1, 30, 'change journal entries kept; an older cursor answers 410'),
  JOURNAL_MAX_ENTRIES: integer(100, 100_000, 'journal entries kept per user, however recent'),
  SYNC_PING_SECONDS: integer(1, 30, 'WebSocket ping interval; a peer that misses one is dropped'),
  SYNC_MAX_BUFFERED_KIB: integer(16, 256, 'unsent bytes per socket before sending pauses'),
  SYNC_SLOW_CLIENT_SECONDS: integer(1, 30, 'a paused socket that has not read its queue by then is dropped'),
  SYNC_MAX_SOCKETS_PER_USER: integer(1, 20, 'sync sockets per user per node (one more is 429)'),
  SYNC_MAX_LONGPOLLS_PER_USER: integer(1, 20, 'open long polls per user per node (one more is 429)'),
  SYNC_RESYNC_SECONDS: integer(1, 60, 'every watcher re-reads its journal this often, news or not'),
  PUBLIC_URL: text('the address link URLs are built on (`https://files.example.org`)', "the request's host"),
  SHARE_RATE_LIMIT_PER_MINUTE: integer(
    1,
    120,
    'requests per address per minute to the anonymous `/share/…` routes',
  ),
  SHARE_PASSWORD_ATTEMPTS: integer(1, 10, 'wrong link passwords per link per window before 429'),
  SHARE_PASSWORD_WINDOW_MINUTES: integer(1, 15, 'the window of `SHARE_PASSWORD_ATTEMPTS`'),
  // Half the link's budget by default: one address alone cannot lock the link's other visitors out.
  SHARE_PASSWORD_ATTEMPTS_PER_ADDRESS: integer(
    1,
    0,
    "how many of a link's password checks per window one address (IPv6: /64) may use",
    'half of `SHARE_PASSWORD_ATTEMPTS`',
  ),
  LOG_LEVEL: text('pino level (`fatal` … `trace`, `silent`); logs are JSON lines with a `reqId`', '`info`'),
} as const satisfies Record<string, Variable>

export type VariableName = keyof typeof VARIABLES

/** The README's table of variables, as Markdown (`npm run docs:config` writes it there). */
export function variableTable(): string {
  const rows = Object.entries(VARIABLES).map(([name, variable]: [string, Variable]) => [
    `\`${name}\``,
    variable.effect,
    variable.unset ?? (variable.type === 'text' ? '' : String(variable.default)),
  ])
  const header = ['variable', 'effect', 'unset']
  const widths = header.map((title, column) =>
    Math.max(title.length, ...rows.map((row) => row[column]?.length ?? 0)),
  )
  const line = (cells: string[]) =>
    `| ${cells.map((cell, column) => cell.padEnd(widths[column] ?? 0)).join(' | ')} |`
  return [line(header), line(widths.map((width) => '-'.repeat(width))), ...rows.map(line)].join('\n')
}

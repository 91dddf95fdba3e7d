// `npm run bench:history` (`npx tsx bench/history-sweep.ts`): the version history sweep must cost
// what is due, not how many files have history. A benchmark, not a test: a store that cannot be
// built or swept exits 1; the figures never fail the process.
//
// A store of FILES files with 2 versions each (a day and two days old) and nothing to prune
// under the default policy, built by bulk SQL with every file due, as migration 0009 leaves an
// upgraded store. Timed on the same data, in the same run:
//   reference   the old full walk: every file with more than one version, one transaction
//               each (VersionHistory.sweep before due times; a copy of its loop is below)
//   new sweep   VersionHistory.sweep with nothing due (the steady state)
// and, for scale, the first sweep after upgrading (every file due once) and a sweep with 1% of
// the files due.
//
//   BENCH_HISTORY_FILES=N    files (default 20,000; 2,000 with BENCH_QUICK=1)
//   BENCH_HISTORY_REPEAT=N   timed runs of each sweep, the median is reported (default 3)
//   BENCH_PG=0               SQLite only; otherwise PostgreSQL too when it answers
//   BENCH_PG_URL=...         PostgreSQL admin URL (default postgres://postgres@127.0.0.1:5432/postgres)
import { randomUUID } from 'node:crypto'
import path from 'node:path'
import BetterSqlite3 from 'better-sqlite3'
import pg from 'pg'
import { openPostgresMetadataStore } from '../src/adapters/postgres/postgres-metadata-store.js'
import { openSqliteMetadataStore } from '../src/adapters/sqlite/sqlite-metadata-store.js'
import { loadConfig } from '../src/config.js'
import type { Millis } from '../src/domain/model.js'
import { type RetentionPolicy, versionsToPrune } from '../src/domain/retention.js'
import type { MetadataStore, Repositories } from '../src/ports/metadata-store.js'
import { VersionHistory } from '../src/services/version-history.js'
import { type Backend, forEachBackend } from './lib/backends.js'
import { failedPhasesExitCode, say } from './lib/phases.js'
import { createBenchDatabase } from './lib/postgres.js'
import { isAborting, onCleanup, runBenchmark, runCleanups } from './lib/processes.js'
import { beginBenchmark, intEnv, PG_ADMIN_URL, QUICK } from './lib/settings.js'
import { fmt, fmtRatio, median, now, table } from './lib/timing.js'

const FILES = intEnv('BENCH_HISTORY_FILES', QUICK ? 2_000 : 20_000)
const REPEAT = intEnv('BENCH_HISTORY_REPEAT', 3)
const USERS = 100
const DAY = 86_400_000
/** The sweeps' batch size (VersionHistory's default, and the old walk's). */
const BATCH = 500
/** The server's default policy (VERSION_* unset). */
const POLICY: RetentionPolicy = loadConfig({}).versions

const fmtMs = (ms: number): string => (ms < 1000 ? `${fmt(ms, 1)} ms` : `${fmt(ms / 1000, 2)} s`)

// ---------------------------------------------------------------------------------------
// Stores built by bulk SQL

/** One metadata store plus the side door the benchmark needs (the store's own is not exposed). */
interface BenchStore {
  meta: MetadataStore
  insert(table: string, rows: readonly Record<string, string | number | null>[]): Promise<void>
  /** The old VersionRepository.filesWithHistory, verbatim in SQL. */
  filesWithHistory(afterNodeId: string | null, limit: number): Promise<string[]>
  /** Makes `count` files due at 0, as a store with that many files due. */
  makeDue(count: number): Promise<void>
  /** How the due-file query is planned. */
  dueQueryPlan(): Promise<string>
  /** What the database would have done on its own by now (PostgreSQL: autovacuum, analyze). */
  settle(): Promise<void>
  close(): Promise<void>
}

const FILES_WITH_HISTORY = `select node_id from versions where node_id > $1
  group by node_id having count(*) > 1 order by node_id limit $2`
const DUE_QUERY = `select id, history_due_at from nodes
  where history_due_at is not null and history_due_at <= $1 order by history_due_at, id limit ${BATCH}`
const MAKE_DUE = `update nodes set history_due_at = 0
  where id in (select id from nodes where kind = 'file' order by id limit $1)`

async function openSqliteStore(dir: string): Promise<BenchStore> {
  const file = path.join(dir, 'tessera.db')
  const meta = await openSqliteMetadataStore({ file })
  const side = new BetterSqlite3(file)
  side.pragma('journal_mode = WAL')
  const sqlite = (query: string) => query.replace(/\$\d/g, '?')
  return {
    meta,
    async insert(table, rows) {
      const columns = Object.keys(rows[0] ?? {})
      const statement = side.prepare(
        `insert into ${table} (${columns.join(', ')}) values (${columns.map(() => '?').join(', ')})`,
      )
      side.transaction(() => {
        for (const row of rows) statement.run(...columns.map((column) => row[column]))
      })()
    },
    async filesWithHistory(after, limit) {
      const rows = side.prepare(sqlite(FILES_WITH_HISTORY)).all(after ?? '', limit) as { node_id: string }[]
      return rows.map((row) => row.node_id)
    },
    async makeDue(count) {
      side.prepare(sqlite(MAKE_DUE)).run(count)
    },
    async dueQueryPlan() {
      const plan = side.prepare(`explain query plan ${sqlite(DUE_QUERY)}`).all(Date.now()) as {
        detail: string
      }[]
      return plan.map((step) => step.detail).join('; ')
    },
    async settle() {
      side.pragma('wal_checkpoint(TRUNCATE)')
      side.exec('analyze')
    },
    async close() {
      await meta.close()
      side.close()
    },
  }
}

async function openPostgresStore(): Promise<BenchStore> {
  const database = await createBenchDatabase(PG_ADMIN_URL)
  onCleanup(() => database.drop())
  const meta = await openPostgresMetadataStore({ url: database.url })
  const side = new pg.Client({ connectionString: database.url })
  side.on('error', () => {})
  await side.connect()
  return {
    meta,
    async insert(table, rows) {
      const columns = Object.keys(rows[0] ?? {})
      for (let start = 0; start < rows.length; start += 1000) {
        const batch = rows.slice(start, start + 1000)
        const values = batch.map(
          (_, i) => `(${columns.map((__, j) => `$${i * columns.length + j + 1}`).join(', ')})`,
        )
        await side.query(
          `insert into ${table} (${columns.join(', ')}) values ${values.join(', ')}`,
          batch.flatMap((row) => columns.map((column) => row[column])),
        )
      }
    },
    async filesWithHistory(after, limit) {
      const { rows } = await side.query<{ node_id: string }>(FILES_WITH_HISTORY, [after ?? '', limit])
      return rows.map((row) => row.node_id)
    },
    async makeDue(count) {
      await side.query(MAKE_DUE, [count])
    },
    async dueQueryPlan() {
      const { rows } = await side.query<{ 'QUERY PLAN': string }>(`explain ${DUE_QUERY}`, [Date.now()])
      return rows.map((row) => row['QUERY PLAN'].trim()).join('; ')
    },
    async settle() {
      await side.query('vacuum analyze nodes')
      await side.query('vacuum analyze versions')
    },
    async close() {
      await meta.close()
      await side.end()
      await database.drop()
    },
  }
}

/** USERS users, FILES files spread over their root folders, 2 versions each, every file due. */
async function load(store: BenchStore, at: Millis): Promise<void> {
  const users = Array.from({ length: USERS }, (_, i) => ({ id: randomUUID(), root: randomUUID(), i }))
  await store.insert(
    'users',
    users.map((user) => ({
      id: user.id,
      email: `bench-${user.i}@example.test`,
      password_hash: 'argon2id$bench',
      quota_bytes: 1024 ** 4,
      root_folder_id: user.root,
      created_at: at - 3 * DAY,
    })),
  )
  const node = (id: string, ownerId: string, parentId: string | null, name: string, file: boolean) => ({
    id,
    owner_id: ownerId,
    parent_id: parentId,
    kind: file ? 'file' : 'folder',
    name,
    name_key: name,
    size: file ? 10 : 0,
    current_version: file ? 2 : null,
    content_hash: file ? 'e'.repeat(64) : null,
    created_at: at - 2 * DAY,
    updated_at: at - DAY,
    // As migration 0009 leaves an upgraded store: every file with history due.
    history_due_at: file ? 0 : null,
  })
  await store.insert(
    'nodes',
    users.map((user) => node(user.root, user.id, null, '', false)),
  )
  const files = Array.from({ length: FILES }, (_, i) => {
    const owner = users[i % USERS] as (typeof users)[number]
    return node(randomUUID(), owner.id, owner.root, `file-${i}.txt`, true)
  })
  await store.insert('nodes', files)
  await store.insert(
    'versions',
    files.flatMap((file) =>
      [1, 2].map((version) => ({
        id: randomUUID(),
        node_id: file.id,
        version,
        size: 10,
        content_hash: 'e'.repeat(64),
        author_id: file.owner_id,
        created_at: at - (3 - version) * DAY,
      })),
    ),
  )
}

// ---------------------------------------------------------------------------------------
// The reference: VersionHistory.sweep and prune as they were before due times

async function oldFullWalk(store: BenchStore, at: Millis): Promise<{ visited: number; pruned: number }> {
  let visited = 0
  let pruned = 0
  let after: string | null = null
  for (;;) {
    const nodeIds = await store.filesWithHistory(after, BATCH)
    for (const nodeId of nodeIds) {
      visited += 1
      pruned += await store.meta.transaction(async (tx) => {
        const file = await tx.nodes.findAnyState(nodeId)
        if (file === null) return 0
        await tx.users.lockTree(file.ownerId)
        const current = await tx.nodes.findAnyState(nodeId)
        return current ? oldPrune(tx, nodeId, current.currentVersion, at) : 0
      })
    }
    if (nodeIds.length < BATCH) return { visited, pruned }
    after = nodeIds.at(-1) ?? null
  }
}

async function oldPrune(tx: Repositories, nodeId: string, currentVersion: number | null, at: Millis) {
  const versions = await tx.versions.list(nodeId)
  if (versions.length <= 1) return 0
  const doomed = versionsToPrune(versions, currentVersion, at, POLICY)
  if (doomed.length === 0) return 0
  const dropped = await tx.versions.delete(doomed.map((version) => version.id))
  await tx.chunks.dropReferences(dropped)
  return doomed.length
}

// ---------------------------------------------------------------------------------------
// One backend

interface Figures {
  firstMs: number
  referenceMs: number
  newMs: number
  onePercentMs: number
  onePercentVisited: number
  plan: string
}

async function timedSweep(work: () => Promise<{ visited: number; pruned: number }>, visited: number) {
  const start = now()
  const report = await work()
  const ms = now() - start
  if (report.visited !== visited || report.pruned !== 0) {
    throw new Error(
      `a sweep visited ${report.visited} (want ${visited}) and pruned ${report.pruned} (want 0)`,
    )
  }
  return ms
}

async function benchBackend(backend: Backend, root: string): Promise<Figures> {
  const store = backend === 'SQLite' ? await openSqliteStore(root) : await openPostgresStore()
  try {
    const at = Date.now()
    const loadStart = now()
    await load(store, at)
    await store.settle()
    say(`${fmt(FILES, 0)} files with 2 versions each loaded in ${fmtMs(now() - loadStart)}`)
    const history = new VersionHistory(store.meta, POLICY)

    // The first sweep after upgrading: the policy is recorded, and every file visited once.
    const firstMs = await timedSweep(() => history.sweep(at), FILES)
    say(`first sweep after upgrading (every file due once): ${fmtMs(firstMs)}`)
    await store.settle()
    const plan = await store.dueQueryPlan()
    say(`due-file query plan: ${plan}`)

    const reference: number[] = []
    const sweeps: number[] = []
    for (let run = 0; run < REPEAT; run++) {
      reference.push(await timedSweep(() => oldFullWalk(store, at), FILES))
      sweeps.push(await timedSweep(() => history.sweep(at), 0))
      say(`run ${run + 1}: old full walk ${fmtMs(reference.at(-1)!)}, new sweep ${fmtMs(sweeps.at(-1)!)}`)
    }
    const onePercent: number[] = []
    const due = Math.max(1, Math.round(FILES / 100))
    for (let run = 0; run < REPEAT; run++) {
      await store.makeDue(due)
      onePercent.push(await timedSweep(() => history.sweep(at), due))
    }
    return {
      firstMs,
      referenceMs: median(reference),
      newMs: median(sweeps),
      onePercentMs: median(onePercent),
      onePercentVisited: due,
      plan,
    }
  } finally {
    await store.close()
  }
}

// ---------------------------------------------------------------------------------------
// Main

function report(results: Map<Backend, Figures | string>): void {
  console.log(
    `\n${'='.repeat(100)}\nHISTORY SWEEP FIGURES (${fmt(FILES, 0)} files with history, nothing to prune)\n`,
  )
  const rows = [['backend', 'old full walk', 'new sweep', 'old / new', '1% due', 'first after upgrade']]
  for (const [backend, result] of results) {
    if (typeof result === 'string') {
      rows.push([backend, result, '', '', '', ''])
      continue
    }
    rows.push([
      backend,
      fmtMs(result.referenceMs),
      fmtMs(result.newMs),
      fmtRatio(result.referenceMs / result.newMs),
      `${fmtMs(result.onePercentMs)} (${fmt(result.onePercentVisited, 0)} files)`,
      fmtMs(result.firstMs),
    ])
  }
  console.log(table(rows, ['l', 'r', 'r', 'r', 'r', 'r']))
}

async function main(): Promise<number> {
  const root = await beginBenchmark({
    title: 'Tessera history sweep benchmark',
    settings: [
      `${fmt(FILES, 0)} files x 2 versions, nothing to prune (default policy); median of ${REPEAT} runs`,
    ],
    tmpPrefix: 'tessera-bench-history-',
  })
  const results = await forEachBackend((backend) => benchBackend(backend, root))
  await runCleanups()
  if (isAborting()) return 1
  report(results)
  return failedPhasesExitCode()
}

runBenchmark(main)

import { execFileSync } from 'node:child_process'
import { existsSync } from 'node:fs'
import { mkdir, readdir, readFile, symlink } from 'node:fs/promises'
import path from 'node:path'
import { phase } from './phases.js'
import { createBenchDatabase } from './postgres.js'
import { onCleanup, REPO_ROOT } from './processes.js'
import { PG_ADMIN_URL } from './settings.js'
import { buildTessera, builtTessera, type TesseraCommand } from './tessera-server.js'

/**
 * The commit a benchmark compares this checkout with (before the change it measures), checked
 * out in a worktree under `work` and built there with this checkout's dependencies, plus any
 * it had that this checkout has since dropped (installed beside it). Answers the worktree; its
 * `dist/cli/main.js` is its `tessera`. The worktree goes at cleanup.
 */
export async function buildBaseline(ref: string, work: string): Promise<string> {
  const tree = path.join(work, `baseline-${ref}`)
  const run = (command: string, args: string[], cwd: string) =>
    execFileSync(command, args, { cwd, stdio: ['ignore', 'ignore', 'inherit'] })
  run('git', ['worktree', 'add', '--detach', tree, ref], REPO_ROOT)
  onCleanup(() => {
    run('git', ['worktree', 'remove', '--force', tree], REPO_ROOT)
  })
  await linkDependencies(tree, work)
  run(
    process.execPath,
    // Emitted without a type check: it was checked when committed, and a package installed
    // beside this checkout's may not see this checkout's types.
    [path.join(REPO_ROOT, 'node_modules/typescript/bin/tsc'), '-p', 'tsconfig.build.json', '--noCheck'],
    tree,
  )
  return tree
}

/**
 * `tree/node_modules` as links to this checkout's packages, and to packages `tree` depends on
 * that this checkout no longer has, installed once under `work`.
 */
async function linkDependencies(tree: string, work: string): Promise<void> {
  const own = path.join(REPO_ROOT, 'node_modules')
  const modules = path.join(tree, 'node_modules')
  await mkdir(modules)
  for (const entry of await readdir(own)) {
    if (!entry.startsWith('@')) {
      await symlink(path.join(own, entry), path.join(modules, entry))
      continue
    }
    await mkdir(path.join(modules, entry))
    for (const scoped of await readdir(path.join(own, entry))) {
      await symlink(path.join(own, entry, scoped), path.join(modules, entry, scoped))
    }
  }
  const manifest = JSON.parse(await readFile(path.join(tree, 'package.json'), 'utf8'))
  const wanted = Object.entries({ ...manifest.dependencies, ...manifest.devDependencies }) as [
    string,
    string,
  ][]
  const missing = wanted.filter(([name]) => !existsSync(path.join(own, name)))
  if (missing.length === 0) return
  const extra = path.join(work, 'baseline-extra')
  await mkdir(extra, { recursive: true })
  execFileSync(
    'npm',
    ['install', '--no-save', '--no-package-lock', '--prefix', extra, ...missing.map(([n, v]) => `${n}@${v}`)],
    {
      stdio: ['ignore', 'ignore', 'inherit'],
    },
  )
  for (const [name] of missing) {
    await mkdir(path.dirname(path.join(modules, name)), { recursive: true })
    await symlink(path.join(extra, 'node_modules', name), path.join(modules, name))
  }
}

/** The commit before the integrity work (issue 9): downloads unverified, declarations in one transaction. */
export const BEFORE_INTEGRITY = 'c88f481'

/** The commit before the hostile-client work (issue 10): limits keyed on the bearer, proofs hashed per entry. */
export const BEFORE_HOSTILE_CLIENTS = '2af0bb1'

export interface Contenders {
  /** This checkout, built. */
  current: TesseraCommand
  /** The commit it is compared with, built in a worktree. */
  baseline: TesseraCommand
}

/** Builds this checkout and `ref` (under `work`), each as a phase; undefined when either failed. */
export async function buildContenders(ref: string, work: string): Promise<Contenders | undefined> {
  const current = await buildTessera()
  const baseline = await phase(`build ${ref} (the baseline) in a worktree`, async () =>
    builtTessera(await buildBaseline(ref, work)),
  )
  return current && baseline ? { current, baseline } : undefined
}

export type Database = 'sqlite' | 'postgres'

/** A server's database setting: none for SQLite; for PostgreSQL a throwaway one, dropped at cleanup. */
export async function databaseEnv(db: Database): Promise<Record<string, string>> {
  if (db === 'sqlite') return {}
  const database = await createBenchDatabase(PG_ADMIN_URL)
  onCleanup(() => database.drop())
  return { DATABASE_URL: database.url }
}

/**
 * Runs `measure` on this checkout and on `ref`, on SQLite and then PostgreSQL, each pairing a
 * phase of its own. Answers false when a build failed and nothing was measured.
 */
export async function compareWithBaseline(
  ref: string,
  work: string,
  measure: (target: { label: string; command: TesseraCommand }, db: Database) => Promise<void>,
): Promise<boolean> {
  const contenders = await buildContenders(ref, work)
  if (!contenders) return false
  const targets = [
    { label: 'this checkout', command: contenders.current },
    { label: `before (${ref})`, command: contenders.baseline },
  ]
  for (const db of ['sqlite', 'postgres'] as const) {
    for (const target of targets) await phase(`${db}, ${target.label}`, () => measure(target, db))
  }
  return true
}

import { execFileSync } from 'node:child_process'
import { symlink } from 'node:fs/promises'
import path from 'node:path'
import { onCleanup, REPO_ROOT } from './processes.js'

/**
 * The commit a benchmark compares this checkout with (before the change it measures), checked
 * out in a worktree under `work` and built there with this checkout's dependencies. Answers the
 * worktree; its `dist/cli/main.js` is its `tessera`. The worktree goes at cleanup.
 */
export async function buildBaseline(ref: string, work: string): Promise<string> {
  const tree = path.join(work, `baseline-${ref}`)
  const run = (command: string, args: string[], cwd: string) =>
    execFileSync(command, args, { cwd, stdio: ['ignore', 'ignore', 'inherit'] })
  run('git', ['worktree', 'add', '--detach', tree, ref], REPO_ROOT)
  onCleanup(() => {
    run('git', ['worktree', 'remove', '--force', tree], REPO_ROOT)
  })
  await symlink(path.join(REPO_ROOT, 'node_modules'), path.join(tree, 'node_modules'))
  run(
    process.execPath,
    [path.join(REPO_ROOT, 'node_modules/typescript/bin/tsc'), '-p', 'tsconfig.build.json'],
    tree,
  )
  return tree
}

/** The commit before the integrity work (issue 9): downloads unverified, declarations in one transaction. */
export const BEFORE_INTEGRITY = 'c88f481'

/** The commit before the hostile-client work (issue 10): limits keyed on the bearer, proofs hashed per entry. */
export const BEFORE_HOSTILE_CLIENTS = '2af0bb1'

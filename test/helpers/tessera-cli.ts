import { type ChildProcess, spawn } from 'node:child_process'
import path from 'node:path'
import { fileURLToPath } from 'node:url'

const ROOT = fileURLToPath(new URL('../..', import.meta.url))
const CLI = path.join(ROOT, 'src/cli/main.ts')

export interface CommandRun {
  code: number | null
  stdout: string
  stderr: string
}

/**
 * `tessera <args>` in a process of its own, as an operator runs it, with `env` over this
 * process's environment but with no DATABASE_URL of its own: give one in `env` for PostgreSQL.
 */
export function spawnTessera(
  args: readonly string[],
  env: Record<string, string>,
): { process: ChildProcess; exited: Promise<CommandRun> } {
  const childEnv: NodeJS.ProcessEnv = { ...process.env, LOG_LEVEL: 'silent' }
  delete childEnv.DATABASE_URL
  const child = spawn(process.execPath, ['--import', 'tsx', CLI, ...args], {
    cwd: ROOT,
    env: { ...childEnv, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  let stdout = ''
  let stderr = ''
  child.stdout?.on('data', (data) => {
    stdout += data
  })
  child.stderr?.on('data', (data) => {
    stderr += data
  })
  const exited = new Promise<CommandRun>((resolve, reject) => {
    child.once('error', reject)
    child.once('exit', (code) => resolve({ code, stdout, stderr }))
  })
  return { process: child, exited }
}

/** `tessera <args>` run to its end. */
export const runTessera = (args: readonly string[], env: Record<string, string>): Promise<CommandRun> =>
  spawnTessera(args, env).exited

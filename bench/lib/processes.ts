import { type ChildProcess, spawn } from 'node:child_process'
import { createWriteStream, type WriteStream } from 'node:fs'
import { readFile } from 'node:fs/promises'
import { fileURLToPath } from 'node:url'
import { RESULT_MARKER } from './child.js'
import { waitForPort } from './net.js'

/** The repository root (bench/lib/ is two levels below it). */
export const REPO_ROOT = fileURLToPath(new URL('../../', import.meta.url))

const children = new Set<ChildProcess>()
const cleanups: Array<() => void | Promise<void>> = []
const exitCleanups: Array<() => void> = []
let aborting = false
let abortCode = 1

/** Registers work to do when the benchmark ends, normally or not (servers, databases). */
export function onCleanup(work: () => void | Promise<void>): void {
  cleanups.push(work)
}

/** Synchronous work that must happen even on a hard exit (temp directories). */
export function onExit(work: () => void): void {
  exitCleanups.push(work)
}

/** True once a signal or crash has started tearing everything down: no new phase should start. */
export const isAborting = (): boolean => aborting
/** Kills every child still alive (SIGKILL: nothing of theirs is worth keeping at this point). */
export function killAllChildren(): void {
  for (const child of children) {
    if (child.exitCode === null && child.signalCode === null) {
      try {
        child.kill('SIGKILL')
      } catch {
        // already gone
      }
    }
  }
  children.clear()
}

let cleaning: Promise<void> | undefined

/** Runs the registered cleanups once, newest first; every caller waits for the same run. */
export function runCleanups(): Promise<void> {
  cleaning ??= (async () => {
    while (cleanups.length > 0) {
      const work = cleanups.pop()!
      try {
        await work()
      } catch (error) {
        console.error(`cleanup failed: ${(error as Error).message}`)
      }
    }
    killAllChildren()
  })()
  return cleaning
}

/** Children never outlive the benchmark: on exit, on a signal, on a crash, on a closed stdout. */
export function installExitHandlers(): void {
  process.on('exit', () => {
    killAllChildren()
    for (const work of exitCleanups.splice(0)) {
      try {
        work()
      } catch {
        // best effort on the way out
      }
    }
  })
  const abort = (reason: string, code: number) => {
    if (aborting) return
    aborting = true
    abortCode = code
    killAllChildren()
    try {
      console.error(`\nbench: ${reason}, stopping child processes and cleaning up`)
    } catch {
      // stderr may be the reason
    }
    setTimeout(() => process.exit(code), 5000).unref()
    void runCleanups().finally(() => process.exit(code))
  }
  process.on('SIGINT', () => abort('interrupted', 130))
  process.on('SIGTERM', () => abort('terminated', 143))
  process.on('SIGHUP', () => abort('hung up', 129))
  // A reader that went away (`npm run bench | head`): stop everything, do not spin on EPIPE.
  process.stdout.on('error', () => abort('stdout closed', 1))
  process.stderr.on('error', () => abort('stderr closed', 1))
  process.on('uncaughtException', (error) => {
    if (!aborting) console.error(error)
    abort('uncaught exception', 1)
  })
  process.on('unhandledRejection', (error) => {
    if (!aborting) console.error(error)
    abort('unhandled rejection', 1)
  })
}

/** `node --import tsx <file>`: one process (its pid is the one to sample), TypeScript as is. */
export function tsNode(file: string): { command: string; args: string[] } {
  return { command: process.execPath, args: ['--import', 'tsx', file] }
}

export function benchFile(relative: string): string {
  return fileURLToPath(new URL(`../${relative}`, import.meta.url))
}

export interface ServerProcess {
  name: string
  child: ChildProcess
  pid: number
  port: number
  url: string
  logFile: string
  stop(): Promise<void>
}

export interface StartServerOptions {
  name: string
  command: string
  args: string[]
  port: number
  /** The whole environment of the child (default: this process's). */
  env?: NodeJS.ProcessEnv
  logFile: string
  /** How long the server may take to accept connections. */
  timeoutMs?: number
}

/** Starts a server child with its output in a log file, and waits until its port accepts. */
export async function startServerProcess(options: StartServerOptions): Promise<ServerProcess> {
  const log = createWriteStream(options.logFile)
  const child = spawn(options.command, options.args, {
    cwd: REPO_ROOT,
    env: options.env ?? process.env,
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  children.add(child)
  child.stdout?.pipe(log, { end: false })
  child.stderr?.pipe(log, { end: false })
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()))
  let exitedEarly = false
  void exited.then(() => {
    exitedEarly = true
    children.delete(child)
  })
  try {
    await Promise.race([
      waitForPort(options.port, options.timeoutMs ?? 60_000),
      exited.then(() => {
        throw new Error(`${options.name} exited with code ${child.exitCode} before listening`)
      }),
    ])
  } catch (error) {
    child.kill('SIGKILL')
    await exited
    throw new Error(
      `${(error as Error).message}\n--- ${options.name} log (${options.logFile}) ---\n${await tail(options.logFile)}`,
    )
  }
  if (child.pid === undefined) throw new Error(`${options.name} has no pid`)
  let stopping: Promise<void> | undefined
  return {
    name: options.name,
    child,
    pid: child.pid,
    port: options.port,
    url: `http://127.0.0.1:${options.port}`,
    logFile: options.logFile,
    stop() {
      stopping ??= (async () => {
        if (!exitedEarly) {
          child.kill('SIGTERM')
          const timer = setTimeout(() => child.kill('SIGKILL'), 5000)
          await exited
          clearTimeout(timer)
        }
        await closeLog(log)
      })()
      return stopping
    },
  }
}

function closeLog(log: WriteStream): Promise<void> {
  return new Promise((resolve) => log.end(() => resolve()))
}

async function tail(file: string, lines = 40): Promise<string> {
  try {
    return (await readFile(file, 'utf8')).split('\n').slice(-lines).join('\n')
  } catch {
    return '(no log)'
  }
}

/**
 * Runs a client script (bench/clients/*.ts) in its own process with a JSON config as its
 * only argument, and returns the JSON it reports. Its stderr passes through.
 */
export async function runClient<T>(script: string, config: unknown, timeoutMs = 30 * 60_000): Promise<T> {
  const { command, args } = tsNode(benchFile(`clients/${script}`))
  const child = spawn(command, [...args, JSON.stringify(config)], {
    cwd: REPO_ROOT,
    env: process.env,
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  children.add(child)
  let stdout = ''
  let stderr = ''
  child.stdout?.setEncoding('utf8').on('data', (text: string) => {
    stdout += text
  })
  child.stderr?.setEncoding('utf8').on('data', (text: string) => {
    stderr += text
  })
  let timedOut = false
  const timer = setTimeout(() => {
    timedOut = true
    child.kill('SIGKILL')
  }, timeoutMs)
  const code = await new Promise<number | null>((resolve) =>
    child.once('close', (exitCode) => resolve(exitCode)),
  )
  clearTimeout(timer)
  children.delete(child)
  const line = stdout
    .split('\n')
    .reverse()
    .find((candidate) => candidate.startsWith(RESULT_MARKER))
  if (code !== 0 || line === undefined) {
    const output = `${stdout}\n${stderr}`.trim().split('\n').slice(-30).join('\n')
    const why = timedOut ? `timed out after ${Math.round(timeoutMs / 1000)} s` : `exit ${code}`
    throw new Error(`client ${script} failed (${why}):\n${output}`)
  }
  return JSON.parse(line.slice(RESULT_MARKER.length)) as T
}

/** Runs a command to completion; rejects with its output on a non-zero exit. */
export async function runCommand(
  command: string,
  args: string[],
  options: { cwd?: string } = {},
): Promise<string> {
  const child = spawn(command, args, { cwd: options.cwd ?? REPO_ROOT, stdio: ['ignore', 'pipe', 'pipe'] })
  children.add(child)
  let output = ''
  child.stdout?.setEncoding('utf8').on('data', (text: string) => {
    output += text
  })
  child.stderr?.setEncoding('utf8').on('data', (text: string) => {
    output += text
  })
  const code = await new Promise<number | null>((resolve) =>
    child.once('close', (exitCode) => resolve(exitCode)),
  )
  children.delete(child)
  if (code !== 0) throw new Error(`${command} ${args.join(' ')} failed (exit ${code}):\n${output.trim()}`)
  return output
}

/**
 * Runs a benchmark's `main` and exits with its code once the cleanups have run (the abort's
 * code when a signal stopped it; 1 when `main` throws).
 */
export function runBenchmark(main: () => Promise<number>): void {
  main().then(
    async (code) => {
      await runCleanups()
      process.exit(aborting ? abortCode : code)
    },
    async (error: unknown) => {
      if (!aborting) console.error(error instanceof Error ? (error.stack ?? error.message) : error)
      await runCleanups()
      process.exit(aborting ? abortCode : 1)
    },
  )
}

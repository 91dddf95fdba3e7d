import { basename, dirname, resolve } from 'node:path'

/**
 * Reads an `strace -f -tt -yy` log of a server and replays it into a model of what only the page
 * cache holds, so that a test can ask, at the moment an answer went out on a socket, whether
 * anything the answer promises would be lost at a power cut.
 *
 * The model is the pessimistic reading of POSIX (the one test/helpers/power-loss-fs.ts takes):
 * - a file's bytes are durable once an fsync or fdatasync of it (through any of its names:
 *   files are followed across link and rename as inodes) started after the write had ended;
 * - a name in a directory (made by open with O_CREAT, link, rename, mkdir; removed by unlink,
 *   rename, rmdir) is durable once an fsync of that directory started after the change ended;
 * - a path is durable when its bytes are and every name on the way down from the root is;
 * - sync() and syncfs() make everything durable that ended before they started.
 * Only paths under `root` are modelled; whatever is outside (node_modules, the tsx cache, other
 * processes' files) is ignored, and the root's own name is taken as durable (the test made it).
 * Lines are ordered as strace wrote them; a call that strace split (`<unfinished ...>` and
 * `<... resumed>`, on another thread meanwhile) starts at its first line and ends at its last.
 */

/** One system call of the trace, its two halves joined. */
export interface Syscall {
  tid: number
  name: string
  /** The arguments as strace printed them (strings escaped, fds as `N</path>`). */
  args: string
  /** The return value; negative for an error. */
  result: number
  /** Line numbers (0-based) of its start and its end. */
  start: number
  end: number
  /** The first line, for messages. */
  text: string
}

const LINE = /^(\d+)\s+\S+\s+(.*)$/
const UNFINISHED = ' <unfinished ...>'
const RESUMED = /^<\.\.\. (\w+) resumed>(.*)$/
const CALL = /^(\w+)\((.*)$/

/** Joins the halves of split calls; signals, exits and calls whose end is missing are left out. */
export function parseTrace(log: string): Syscall[] {
  const calls: Syscall[] = []
  const pending = new Map<number, { name: string; args: string; start: number; text: string }>()
  log.split('\n').forEach((line, index) => {
    const match = LINE.exec(line)
    if (!match) return
    const tid = Number(match[1])
    const rest = match[2] as string
    const resumed = RESUMED.exec(rest)
    if (resumed) {
      const begun = pending.get(tid)
      pending.delete(tid)
      if (begun !== undefined && begun.name === resumed[1]) {
        calls.push(finish(tid, begun, begun.args + resumed[2], index))
      }
      return
    }
    const call = CALL.exec(rest)
    if (!call) return
    const [name, args] = [call[1] as string, call[2] as string]
    if (args.endsWith(UNFINISHED)) {
      pending.set(tid, { name, args: args.slice(0, -UNFINISHED.length), start: index, text: rest })
      return
    }
    calls.push(finish(tid, { name, start: index, text: rest }, args, index))
  })
  return calls
}

function finish(
  tid: number,
  begun: { name: string; start: number; text: string },
  argsAndResult: string,
  end: number,
): Syscall {
  const cut = argsAndResult.lastIndexOf(') = ')
  const args = cut < 0 ? argsAndResult : argsAndResult.slice(0, cut)
  const result = cut < 0 ? Number.NaN : Number.parseInt(argsAndResult.slice(cut + 4), 10)
  return { tid, name: begun.name, args, result, start: begun.start, end, text: begun.text }
}

/** Each call's beginning and end in trace order (a call on one line: its beginning first). */
export function inTraceOrder(calls: Syscall[]): { phase: 'begin' | 'end'; call: Syscall }[] {
  const events = calls.flatMap((call) => [
    { line: call.start, phase: 'begin' as const, call },
    { line: call.end, phase: 'end' as const, call },
  ])
  return events.sort((a, b) => a.line - b.line || (a.phase === 'begin' ? -1 : 1))
}

/** The path an fd argument stands for (`27</data/tessera.db-wal>`), without " (deleted)". */
export function fdPath(args: string): string | undefined {
  const match = /^-?\d+<(.*?)>(?:,|$)/.exec(args)
  return match?.[1]?.replace(/ \(deleted\)$/, '')
}

/** The quoted strings among the arguments, unescaped enough for paths. */
export function quotedStrings(args: string): string[] {
  return [...args.matchAll(/"((?:[^"\\]|\\.)*)"/g)].map((m) => (m[1] as string).replace(/\\(.)/g, '$1'))
}

/** A span of time in trace lines; `end` is Infinity while the call is still running. */
interface Span {
  start: number
  end: number
}

interface Inode {
  writes: Span[]
  /** Writes that ended before this line are durable. */
  syncedBefore: number
}

interface Directory {
  /** Changes to each name of the directory. */
  changes: Map<string, Span[]>
  syncedBefore: number
}

const WRITES = new Set(['write', 'pwrite64', 'writev', 'pwritev', 'pwritev2', 'ftruncate', 'fallocate'])
const SYNCS = new Set(['fsync', 'fdatasync'])
const GLOBAL_SYNCS = new Set(['sync', 'syncfs'])
const OPENS = new Set(['open', 'openat', 'creat'])
const LINKS = new Set(['link', 'linkat'])
const RENAMES = new Set(['rename', 'renameat', 'renameat2'])
const REMOVES = new Set(['unlink', 'unlinkat', 'rmdir'])
const MKDIRS = new Set(['mkdir', 'mkdirat'])

/** What `strace -e trace=` needs for this model, and for the answers on sockets. */
export const TRACED_CALLS = [
  ...WRITES,
  ...SYNCS,
  ...GLOBAL_SYNCS,
  ...OPENS,
  ...LINKS,
  ...RENAMES,
  ...REMOVES,
  ...MKDIRS,
  'sendto',
  'sendmsg',
]

/** Why a path would not survive a power cut right now. */
export interface Volatile {
  path: string
  why: string
}

/**
 * The page-cache model, fed one call at a time in trace order: `begin` at a call's first line,
 * `end` at its last. Queries answer for the moment between the two most recent events.
 */
export class PageCacheModel {
  readonly #root: string
  readonly #paths = new Map<string, Inode>()
  readonly #dirs = new Map<string, Directory>()
  /** What each running call touches, resolved when it began (an fd's inode then). */
  readonly #running = new Map<Syscall, { inode?: Inode; spans: Span[] }>()
  #globalSyncedBefore = -1

  constructor(root: string) {
    this.#root = resolve(root)
  }

  /** Whether `path` is the root or below it. */
  inside(path: string | undefined): path is string {
    return path !== undefined && (path === this.#root || path.startsWith(`${this.#root}/`))
  }

  begin(call: Syscall): void {
    const fd = fdPath(call.args)
    if (WRITES.has(call.name) && this.inside(fd)) {
      const span = { start: call.start, end: Number.POSITIVE_INFINITY }
      const inode = this.#inode(fd)
      inode.writes.push(span)
      this.#running.set(call, { inode, spans: [span] })
    } else if (SYNCS.has(call.name) && this.inside(fd)) {
      this.#running.set(call, { inode: this.#inode(fd), spans: [] })
    } else {
      const spans = this.#nameChanges(call).map(([dir, name]) => this.#change(dir, name, call.start))
      if (spans.length > 0) this.#running.set(call, { spans })
    }
  }

  end(call: Syscall): void {
    const running = this.#running.get(call)
    this.#running.delete(call)
    const failed = !(call.result >= 0)
    for (const span of running?.spans ?? []) span.end = failed ? Number.NEGATIVE_INFINITY : call.end
    if (failed) return
    if (GLOBAL_SYNCS.has(call.name)) this.#globalSyncedBefore = call.start
    if (SYNCS.has(call.name) && running?.inode) {
      running.inode.syncedBefore = Math.max(running.inode.syncedBefore, call.start)
      const dir = this.#dirs.get(fdPath(call.args) as string)
      if (dir) dir.syncedBefore = Math.max(dir.syncedBefore, call.start)
    }
    this.#movePaths(call)
  }

  /** Paths under the root whose last component satisfies `test`. */
  pathsNamed(test: (name: string) => boolean): string[] {
    return [...this.#paths.keys()].filter((path) => test(basename(path)))
  }

  /** How many writes to `path` (through any of its names) the trace showed: none means it saw too little. */
  writesTo(path: string): number {
    return this.#paths.get(path)?.writes.length ?? 0
  }

  /** What a power cut now would lose of `path`: its bytes, or a name on the way to it. */
  volatile(path: string): Volatile[] {
    const found: Volatile[] = []
    const inode = this.#paths.get(path)
    if (inode === undefined) return [{ path, why: 'never seen in the trace' }]
    const dirty = inode.writes.find((w) => !this.#covered(w, inode.syncedBefore))
    if (dirty) found.push({ path, why: `bytes written at line ${dirty.start + 1} not fsynced since` })
    for (let at = path; at !== this.#root && this.inside(at); at = dirname(at)) {
      const dir = this.#dirs.get(dirname(at))
      const change = dir?.changes.get(basename(at))?.find((c) => !this.#covered(c, dir.syncedBefore))
      if (change) {
        const where = `name ${basename(at)} in ${dirname(at)}`
        found.push({ path, why: `${where} changed at line ${change.start + 1}, directory not fsynced since` })
      }
    }
    return found
  }

  #covered(span: Span, syncedBefore: number): boolean {
    return span.end < Math.max(syncedBefore, this.#globalSyncedBefore)
  }

  #inode(path: string): Inode {
    let inode = this.#paths.get(path)
    if (inode === undefined) {
      inode = { writes: [], syncedBefore: -1 }
      this.#paths.set(path, inode)
    }
    return inode
  }

  #dir(path: string): Directory {
    let dir = this.#dirs.get(path)
    if (dir === undefined) {
      dir = { changes: new Map(), syncedBefore: -1 }
      this.#dirs.set(path, dir)
    }
    return dir
  }

  #change(dir: string, name: string, start: number): Span {
    const changes = this.#dir(dir).changes
    const span = { start, end: Number.POSITIVE_INFINITY }
    changes.set(name, [...(changes.get(name) ?? []), span])
    return span
  }

  /** The names a call changes, as [directory, name] pairs under the root. */
  #nameChanges(call: Syscall): [string, string][] {
    const paths = pathArguments(call)
    let changed: string[] = []
    if (OPENS.has(call.name)) {
      const creates = call.name === 'creat' || /\bO_CREAT\b/.test(call.args)
      // A file created before the trace began is not modelled: DATA_DIR starts empty.
      if (creates && paths[0] !== undefined && !this.#paths.has(paths[0])) changed = [paths[0]]
    } else if (LINKS.has(call.name) || RENAMES.has(call.name)) {
      changed = RENAMES.has(call.name) ? paths.slice(0, 2) : paths.slice(1, 2)
    } else if (REMOVES.has(call.name) || MKDIRS.has(call.name)) {
      changed = paths.slice(0, 1)
    }
    return changed.filter((path) => this.inside(path)).map((path) => [dirname(path), basename(path)])
  }

  /** After a call succeeded: which inode each name now stands for. */
  #movePaths(call: Syscall): void {
    const [first, second] = pathArguments(call)
    if (first === undefined || !(this.inside(first) || this.inside(second))) return
    if (OPENS.has(call.name) && /\bO_TRUNC\b/.test(call.args)) {
      this.#inode(first).writes.push({ start: call.start, end: call.end })
    } else if (OPENS.has(call.name) || MKDIRS.has(call.name)) {
      this.#inode(first)
      if (MKDIRS.has(call.name)) this.#dir(first)
    } else if ((LINKS.has(call.name) || RENAMES.has(call.name)) && second !== undefined) {
      this.#paths.set(second, this.#inode(first))
      if (RENAMES.has(call.name)) this.#paths.delete(first)
    } else if (REMOVES.has(call.name)) {
      this.#paths.delete(first)
    }
  }
}

/** A call's path arguments, made absolute against the directory fd before each (`AT_FDCWD</cwd>`). */
function pathArguments(call: Syscall): string[] {
  const paths: string[] = []
  let base = '/'
  for (const match of call.args.matchAll(/(?:AT_FDCWD|-?\d+)<([^>]*)>|"((?:[^"\\]|\\.)*)"/g)) {
    if (match[1] !== undefined) base = match[1]
    else paths.push(resolve(base, (match[2] as string).replace(/\\(.)/g, '$1')))
  }
  return paths
}

/** An HTTP answer the server began writing to a socket. */
export interface SocketAnswer {
  status: number
  /** What strace showed of it (escaped), head and as much of the body as `-s` let through. */
  text: string
  call: Syscall
}

/** Whether a call writes the start of an HTTP answer to a socket; what it shows of it. */
export function socketAnswer(call: Syscall): SocketAnswer | undefined {
  if (!['write', 'writev', 'sendto', 'sendmsg'].includes(call.name)) return undefined
  if (!/^-?\d+<(TCP|TCPv6|socket):/.test(call.args)) return undefined
  const match = /"HTTP\/1\.1 (\d{3}) /.exec(call.args)
  if (!match || call.args.indexOf('"HTTP/1.1') > call.args.indexOf('"')) return undefined
  return { status: Number(match[1]), text: call.args.replace(/\\"/g, '"'), call }
}

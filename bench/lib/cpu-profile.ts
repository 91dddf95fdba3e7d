// Where a V8 CPU profile (`node --cpu-prof`) spends its main thread, by category: each sample's
// self time goes to the nearest frame, from the leaf up, that says what the work is (a native
// leaf such as a binding's `writev` is named by its JavaScript caller).
import { readFile } from 'node:fs/promises'

interface CallFrame {
  functionName: string
  url: string
}

interface ProfileNode {
  id: number
  callFrame: CallFrame
  children?: number[]
}

export interface CpuProfile {
  nodes: ProfileNode[]
  startTime: number
  endTime: number
  samples: number[]
  timeDeltas: number[]
}

export const CATEGORIES = [
  'SHA-256',
  'file writes',
  'fsync and other fs calls',
  'SQLite',
  'PostgreSQL',
  'SQL building (Kysely)',
  'Fastify / HTTP parsing, sockets',
  "Tessera's own JS",
  'GC',
  'idle',
  'other',
] as const

export type Category = (typeof CATEGORIES)[number]

const HTTP =
  /fastify|find-my-way|avvio|light-my-request|node:_http_|node:http|internal\/http|node:net|stream_base_commons/

/** What one frame says about its work, or undefined when its caller should say it. */
function classify({ functionName, url }: CallFrame): Category | undefined {
  if (functionName === '(garbage collector)') return 'GC'
  if (functionName === '(idle)') return 'idle'
  if (functionName === '(program)' || functionName === '(root)') return 'other'
  if (url === '') return undefined
  if (url.includes('internal/crypto/hash')) return 'SHA-256'
  if (/internal\/fs\/|node:fs/.test(url))
    return /write/i.test(functionName) ? 'file writes' : 'fsync and other fs calls'
  // Kysely's drivers call the database: better-sqlite3's statements run inside them.
  if (/better-sqlite3|adapters\/sqlite|kysely\/dist\/\w+\/dialect\/sqlite/.test(url)) return 'SQLite'
  if (
    /node_modules\/pg|pg-protocol|pg-pool|adapters\/postgres|kysely\/dist\/\w+\/dialect\/postgres/.test(url)
  )
    return 'PostgreSQL'
  if (url.includes('node_modules/kysely')) return 'SQL building (Kysely)'
  if (HTTP.test(url)) return 'Fastify / HTTP parsing, sockets'
  if (!url.includes('node_modules') && /\/(dist|src)\//.test(url)) return "Tessera's own JS"
  return undefined
}

function categoriesByNode(profile: CpuProfile): Map<number, Category> {
  const byId = new Map(profile.nodes.map((node) => [node.id, node]))
  const parent = new Map<number, number>()
  for (const node of profile.nodes) for (const child of node.children ?? []) parent.set(child, node.id)
  const category = new Map<number, Category>()
  const resolve = (id: number): Category => {
    const known = category.get(id)
    if (known) return known
    const own = classify(byId.get(id)!.callFrame)
    const up = parent.get(id)
    const found = own ?? (up === undefined ? 'other' : resolve(up))
    category.set(id, found)
    return found
  }
  for (const node of profile.nodes) resolve(node.id)
  return category
}

export interface ProfileSummary {
  /** Self time in ms per category, within the window. */
  ms: Map<Category, number>
  windowMs: number
  /** The heaviest functions by self time (name, ms), for what the categories leave unsaid. */
  top: Array<{ name: string; category: Category; ms: number }>
}

/**
 * Self time by category of the samples between `from` and `to` (µs, the profile's clock:
 * CLOCK_MONOTONIC, as process.hrtime); the whole profile when the window misses it.
 */
export function summarize(profile: CpuProfile, from: number, to: number): ProfileSummary {
  const category = categoriesByNode(profile)
  const frames = new Map(profile.nodes.map((node) => [node.id, node.callFrame]))
  const inWindow = from < profile.endTime && to > profile.startTime
  const ms = new Map<Category, number>(CATEGORIES.map((name) => [name, 0]))
  const byFunction = new Map<string, { category: Category; ms: number }>()
  let time = profile.startTime
  profile.samples.forEach((id, i) => {
    time += profile.timeDeltas[i] ?? 0
    const self = (profile.timeDeltas[i + 1] ?? 0) / 1000
    if (inWindow && (time < from || time > to)) return
    const which = category.get(id) ?? 'other'
    ms.set(which, ms.get(which)! + self)
    const frame = frames.get(id)!
    const where = frame.url.replace(/^.*\/node_modules\//, '').replace(/^.*\/(dist|src)\//, '$1/')
    const name = `${frame.functionName || '(anonymous)'} ${where}`.trim()
    const entry = byFunction.get(name) ?? { category: which, ms: 0 }
    entry.ms += self
    byFunction.set(name, entry)
  })
  const top = [...byFunction.entries()]
    .map(([name, entry]) => ({ name, ...entry }))
    .filter((entry) => entry.category !== 'idle')
    .sort((a, b) => b.ms - a.ms)
    .slice(0, 12)
  const windowMs = inWindow ? (to - from) / 1000 : (profile.endTime - profile.startTime) / 1000
  return { ms, windowMs, top }
}

export async function readProfile(file: string): Promise<CpuProfile> {
  return JSON.parse(await readFile(file, 'utf8')) as CpuProfile
}

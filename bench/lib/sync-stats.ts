// Matching what the sync writer did with what the sync listener received (bench/sync.ts), with
// the checks that make a wrong delivery an error rather than a figure.
import type { Arrival, SyncListenerResult } from '../clients/sync-listener.js'
import type { SyncWriterResult, Write } from '../clients/sync-writer.js'
import { fmt, percentile } from './timing.js'

export interface Summary {
  n: number
  p50: number
  p95: number
  p99: number
  max: number
}

export function summarize(values: readonly number[]): Summary {
  return {
    n: values.length,
    p50: percentile(values, 50),
    p95: percentile(values, 95),
    p99: percentile(values, 99),
    max: values.length === 0 ? Number.NaN : Math.max(...values),
  }
}

export const fmtMs = (ms: number): string => `${fmt(ms, ms < 10 ? 2 : 1)} ms`

/** Per kind of change: send → event, response → event, and the request itself (send → response). */
export interface Latencies {
  sendToEvent: number[]
  responseToEvent: number[]
  request: number[]
}

const emptyLatencies = (): Latencies => ({ sendToEvent: [], responseToEvent: [], request: [] })

/** Clock readings this far apart count as equal (rounding of two processes' readings). */
const CLOCK_SLACK_MS = 0.05

/**
 * Pairs each write with its one event (by id) on the socket(s) of its user; `socketOf` says
 * which socket index must receive the writes of a user (-1: none, no event may come). Throws on any missing, duplicated,
 * misrouted or foreign event, and on an event that arrived before its request was sent (the
 * clocks would not be shared). Warm-up writes are checked too, and left out of the figures.
 */
export function matchDeliveries(
  writer: SyncWriterResult,
  listener: SyncListenerResult,
  expected: Expected,
): Map<Write['kind'] | 'all', Latencies> {
  const problems: string[] = []
  const problem = (text: string) => {
    if (problems.length < 10) problems.push(text)
    else if (problems.length === 10) problems.push('…')
  }
  checkListener(listener, expected, problem)
  const byId = arrivalsById(listener.arrivals)
  const result = new Map<Write['kind'] | 'all', Latencies>([['all', emptyLatencies()]])
  for (const write of writer.writes) {
    const at = checkDelivery(write, byId.get(write.id) ?? [], expected, problem)
    if (at !== undefined && !write.warmup) record(result, write, at)
  }
  const written = new Set(writer.writes.map((write) => write.id))
  const foreign = listener.arrivals.filter((arrival) => !written.has(arrival[1]))
  if (foreign.length > 0)
    problem(`${foreign.length} events of changes this writer did not make (first: ${foreign[0]![1]})`)
  if (problems.length > 0) throw new Error(`deliveries do not match the writes:\n- ${problems.join('\n- ')}`)
  return result
}

interface Expected {
  socketOf: (user: number) => number
  userIds: readonly string[]
}

/** How the listener ended, what it saw go wrong, and whether each socket is its user's. */
function checkListener(listener: SyncListenerResult, expected: Expected, problem: (text: string) => void) {
  if (listener.ended !== 'complete') problem(`the listener ended on "${listener.ended}", not complete`)
  for (const text of listener.problems.slice(0, 5)) problem(`listener: ${text}`)
  const userIndex = new Map(expected.userIds.map((id, index) => [id, index]))
  listener.socketUsers.forEach((userId, socket) => {
    const user = userIndex.get(userId)
    if (user === undefined || expected.socketOf(user) !== socket)
      problem(`socket ${socket}'s hello names user ${userId}, not the one it was opened for`)
  })
}

function arrivalsById(arrivals: readonly Arrival[]): Map<string, Arrival[]> {
  const byId = new Map<string, Arrival[]>()
  for (const arrival of arrivals) {
    const list = byId.get(arrival[1]) ?? []
    list.push(arrival)
    byId.set(arrival[1], list)
  }
  return byId
}

/** Checks the events of one write; answers its one event's arrival time, if it had one. */
function checkDelivery(
  write: Write,
  events: readonly Arrival[],
  expected: Expected,
  problem: (text: string) => void,
): number | undefined {
  const socket = expected.socketOf(write.user)
  const userId = expected.userIds[write.user]
  if (socket < 0) {
    if (events.length > 0)
      problem(`${write.kind} ${write.id}: an event, but user ${write.user} has no socket`)
    return undefined
  }
  if (events.length !== 1) {
    problem(`${write.kind} ${write.id} of user ${write.user}: ${events.length} events, want exactly 1`)
    return undefined
  }
  const [arrivedOn, , eventUser, action, at] = events[0]!
  if (arrivedOn !== socket) problem(`${write.kind} ${write.id} arrived on socket ${arrivedOn}, not ${socket}`)
  if (eventUser !== userId) problem(`${write.kind} ${write.id}: event of user ${eventUser}, not ${userId}`)
  if (action !== 'create') problem(`${write.kind} ${write.id}: action "${action}", not "create"`)
  if (at < write.sentAt - CLOCK_SLACK_MS)
    problem(
      `${write.kind} ${write.id} arrived ${fmtMs(write.sentAt - at)} BEFORE it was sent: no shared clock`,
    )
  return at
}

/** Adds one write's latencies to its kind's and to all's. */
function record(result: Map<Write['kind'] | 'all', Latencies>, write: Write, at: number): void {
  let kind = result.get(write.kind)
  if (!kind) {
    kind = emptyLatencies()
    result.set(write.kind, kind)
  }
  for (const target of [kind, result.get('all')!]) {
    target.sendToEvent.push(at - write.sentAt)
    target.responseToEvent.push(at - write.respondedAt)
    target.request.push(write.respondedAt - write.sentAt)
  }
}

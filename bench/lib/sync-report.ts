// The final section of bench/sync.ts: figures, Tessera beside its references, goals.
import type { AmqpLatencyResult } from '../clients/amqp-latency.js'
import type { SyncListenerResult } from '../clients/sync-listener.js'
import type { SyncWriterResult } from '../clients/sync-writer.js'
import type { WsRoundTripResult } from '../clients/ws-roundtrip.js'
import { type Latencies, type Summary, summarize } from './sync-stats.js'
import { fmt, fmtRatio, table } from './timing.js'

export interface Scenario {
  label: string
  latencies: Map<string, Latencies>
  pair: { writer: SyncWriterResult; listener: SyncListenerResult }
}

export interface ReportInput {
  settings: {
    changes: number
    warmup: number
    uploadEvery: number
    sockets: number
    fanoutConcurrency: number
  }
  ws: WsRoundTripResult | undefined
  amqp: AmqpLatencyResult | undefined
  scenarios: Scenario[]
  /** Why the RabbitMQ phases did not run, if they did not. */
  brokerSkipped: string | undefined
}

export const GOALS = { latencyP99Ms: 50, fanoutP99Ms: 100, specMaxMs: 2000 }

const ms = (value: number, digits = 2): string =>
  Number.isFinite(value) ? `${fmt(value, digits)} ms` : 'n/a'

const KIND_LABEL: Record<string, string> = {
  folder: 'folder creation',
  upload: 'upload (from complete)',
  all: 'all changes',
}

type Rows = string[][]
const byLabelOf = (scenarios: readonly Scenario[]) =>
  new Map(scenarios.map((scenario) => [scenario.label, scenario]))

/** Adds a row of a latency summary (or of its note alone when there is none). */
function addRow(rows: Rows, label: string, s: Summary | undefined, note = ''): void {
  rows.push(
    s
      ? [label, String(s.n), ms(s.p50), ms(s.p95), ms(s.p99), ms(s.max, 1), note]
      : [label, '', '', '', '', '', note],
  )
}

function referenceRows(rows: Rows, input: ReportInput): void {
  const { ws, amqp, brokerSkipped } = input
  addRow(
    rows,
    'ref: ws echo round trip',
    ws && summarize(ws.roundTripMs),
    ws ? `${ws.messageBytes} B text, one at a time` : 'failed',
  )
  addRow(rows, 'ref: ws one way, server → client', ws && summarize(ws.downMs), ws ? 'shared clock' : '')
  addRow(
    rows,
    'ref: RabbitMQ publish → consume',
    amqp && summarize(amqp.consumeMs),
    amqp ? 'persistent, confirm channel, 2 connections' : (brokerSkipped ?? 'failed'),
  )
  addRow(
    rows,
    'ref: RabbitMQ publish → confirm',
    amqp && summarize(amqp.confirmMs),
    amqp ? 'informational' : '',
  )
}

function scenarioRows(rows: Rows, label: string, scenario: Scenario): void {
  const kinds = label.startsWith('fan-out') ? ['folder'] : ['folder', 'upload', 'all']
  for (const kind of kinds) {
    const values = scenario.latencies.get(kind)
    if (!values) continue
    const name = `${label}, ${KIND_LABEL[kind]}`
    addRow(rows, `${name}: send → event`, summarize(values.sendToEvent), kind === 'all' ? 'the goal' : '')
    if (kind !== 'all' || kinds.length === 1)
      addRow(
        rows,
        `${name}: response → event`,
        summarize(values.responseToEvent),
        '< 0: event before response',
      )
  }
  const all = scenario.latencies.get(kinds.length === 1 ? 'folder' : 'all')
  if (all) addRow(rows, `${label}, the write request itself`, summarize(all.request), 'send → response')
}

function printFigures(input: ReportInput): void {
  const { scenarios, brokerSkipped } = input
  const byLabel = byLabelOf(scenarios)
  const rows: Rows = [['measurement', 'n', 'p50', 'p95', 'p99', 'max', 'note']]
  referenceRows(rows, input)
  const expected = [
    '(a) embedded',
    ...(brokerSkipped ? [] : ['(b) RabbitMQ']),
    'fan-out embedded',
    ...(brokerSkipped ? [] : ['fan-out RabbitMQ']),
  ]
  for (const label of expected) {
    const scenario = byLabel.get(label)
    if (scenario) scenarioRows(rows, label, scenario)
    else addRow(rows, label, undefined, 'FAILED')
  }
  if (brokerSkipped) addRow(rows, '(b) RabbitMQ, fan-out RabbitMQ', undefined, `SKIPPED: ${brokerSkipped}`)
  console.log(
    `\n${'='.repeat(110)}\nSYNC FIGURES (loopback; latency = arrival on device B's socket, shared clock)\n`,
  )
  console.log(table(rows, ['l', 'r', 'r', 'r', 'r', 'r', 'l']))
}

/** Tessera beside the references. */
function printRatios(input: ReportInput): void {
  const { ws, amqp, scenarios } = input
  const rt = ws ? summarize(ws.roundTripMs) : undefined
  const mq = amqp ? summarize(amqp.consumeMs) : undefined
  const ratios: Rows = [
    ['Tessera, send → event', 'p50', 'p99', 'p50 / ws rtt', 'p99 / ws rtt', 'p50 / amqp', 'p99 / amqp'],
  ]
  for (const scenario of scenarios) {
    const values = scenario.latencies.get('all') ?? scenario.latencies.get('folder')
    if (!values) continue
    const s = summarize(values.sendToEvent)
    const overBroker = scenario.label.includes('RabbitMQ')
    ratios.push([
      scenario.label,
      ms(s.p50),
      ms(s.p99),
      rt ? fmtRatio(s.p50 / rt.p50) : 'n/a',
      rt ? fmtRatio(s.p99 / rt.p99) : 'n/a',
      mq && overBroker ? fmtRatio(s.p50 / mq.p50) : '',
      mq && overBroker ? fmtRatio(s.p99 / mq.p99) : '',
    ])
  }
  console.log('')
  console.log(
    `references: ws round trip p50 ${rt ? ms(rt.p50, 3) : 'n/a'}, p99 ${rt ? ms(rt.p99, 3) : 'n/a'}; ` +
      `RabbitMQ publish → consume p50 ${mq ? ms(mq.p50, 3) : 'n/a'}, p99 ${mq ? ms(mq.p99, 3) : 'n/a'}`,
  )
  console.log(table(ratios, ['l', 'r', 'r', 'r', 'r', 'r', 'r']))
}

function printGoals(input: ReportInput): void {
  const { scenarios, brokerSkipped } = input
  const byLabel = byLabelOf(scenarios)
  const goals: Rows = [['goal', 'measured', 'target', 'result']]
  const goal = (name: string, label: string, kind: string, target: number) => {
    const values = byLabel.get(label)?.latencies.get(kind)
    if (!values) {
      const skipped = brokerSkipped && label.includes('RabbitMQ')
      goals.push([name, skipped ? 'SKIPPED' : 'failed', `< ${ms(target, 0)}`, skipped ? 'SKIPPED' : 'n/a'])
      return
    }
    const p99 = summarize(values.sendToEvent).p99
    goals.push([name, ms(p99), `< ${ms(target, 0)}`, p99 < target ? 'OK' : 'MISS'])
  }
  goal('(a) embedded, p99 send → event', '(a) embedded', 'all', GOALS.latencyP99Ms)
  goal('(b) RabbitMQ, p99 send → event', '(b) RabbitMQ', 'all', GOALS.latencyP99Ms)
  goal('fan-out embedded, p99 send → event', 'fan-out embedded', 'folder', GOALS.fanoutP99Ms)
  goal('fan-out RabbitMQ, p99 send → event', 'fan-out RabbitMQ', 'folder', GOALS.fanoutP99Ms)
  for (const label of ['fan-out embedded', 'fan-out RabbitMQ']) {
    const values = byLabel.get(label)?.latencies.get('folder')
    if (values) {
      const p99 = summarize(values.responseToEvent).p99
      goals.push([`   (info) ${label}, p99 response → event`, ms(p99), 'no goal', ''])
    }
  }
  goals.push(worstCaseGoal(scenarios))
  console.log(`\nGOALS (a miss is reported, never fatal)\n`)
  console.log(table(goals, ['l', 'r', 'l', 'l']))
}

/** The spec's bound on every change, against the slowest one of all scenarios. */
function worstCaseGoal(scenarios: readonly Scenario[]): string[] {
  const maxima = scenarios.flatMap((scenario) => {
    const values = scenario.latencies.get('all') ?? scenario.latencies.get('folder')
    return values ? [summarize(values.sendToEvent).max] : []
  })
  const worst = maxima.length > 0 ? Math.max(...maxima) : Number.NaN
  return [
    'spec: every change reaches B in well under 2 s (max)',
    ms(worst, 1),
    `< ${ms(GOALS.specMaxMs, 0)}`,
    Number.isFinite(worst) ? (worst < GOALS.specMaxMs ? 'OK' : 'MISS') : 'n/a',
  ]
}

function printNotes(settings: ReportInput['settings']): void {
  console.log(
    '\nNotes:\n' +
      `- Latency scenarios: ${settings.changes} changes (after ${settings.warmup} unmeasured warm-up ones) by one user, ` +
      `one request at a time;\n  every ${settings.uploadEvery}th is a real 1 KiB upload (init → chunk PUT → complete), ` +
      'timed from just before `complete`;\n  the others are folder creations (POST /folders). Device B is a second ' +
      "login of the same user, its socket in the listener process.\n- 'send → event': from just before the request " +
      "was sent to the event's arrival at B; 'response → event': from A having read the\n  response (negative when " +
      'the push beat the HTTP response). Both on process.hrtime (CLOCK_MONOTONIC, shared by every process).\n' +
      `- Fan-out: ${settings.sockets} users, one socket each, all in one listener process; one folder creation ` +
      `per user, ${settings.fanoutConcurrency} in flight, from\n  a writer process, after ${settings.warmup} ` +
      "unmeasured ones by users without a socket. Every socket must receive exactly its user's one change\n" +
      "  (checked: a mismatch fails the phase). Its send → event includes each write's wait behind the others " +
      "in flight\n  (see 'the write request itself'); response → event is the push alone.\n" +
      '- (b) and fan-out RabbitMQ: two servers on one PostgreSQL database; writes on node 1, sockets on node 2, ' +
      'so each\n  event crosses the broker (node 2 then reads the change from PostgreSQL and pushes it).\n' +
      '- The ws reference is a ROUND trip of a bare echo; the RabbitMQ one a publish (confirm channel, ' +
      "persistent) to a\n  consumer on another connection, Tessera's node-queue shape. Writer, listener, servers " +
      'and broker share the CPUs.',
  )
}

export function report(input: ReportInput): void {
  printFigures(input)
  printRatios(input)
  printGoals(input)
  printNotes(input.settings)
}

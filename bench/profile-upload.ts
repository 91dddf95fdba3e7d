// `npm run bench:profile [-- --ref <git ref>]`: where an upload's time goes in the server, before
// and after. Starts Tessera (dist/ build, SQLite) under `node --cpu-prof`, uploads one file of
// BENCH_PROFILE_MIB (default 512) MiB with Node fetch, 8 chunk PUTs in flight, and prints the
// server's main-thread self time during the upload by category, in ms per 4 MiB chunk, for
// this checkout and for `--ref` (default 51f426f, the start of issue 12) built in a temporary
// git worktree, side by side. A benchmark, not a test.
import { readdir } from 'node:fs/promises'
import path from 'node:path'
import { buildBaseline } from './lib/baseline.js'
import { CATEGORIES, type ProfileSummary, readProfile, summarize } from './lib/cpu-profile.js'
import { writeRandomFile } from './lib/files.js'
import type { WholeUploadResult } from './lib/outside-client.js'
import { failedPhasesExitCode, phase, say } from './lib/phases.js'
import { REPO_ROOT, runBenchmark, runClient } from './lib/processes.js'
import { RSS_PEAKS, withTessera } from './lib/run-servers.js'
import { SETTINGS, transferTimeout } from './lib/run-settings.js'
import { beginBenchmark, intEnv } from './lib/settings.js'
import { buildTessera, builtTessera, type TesseraCommand } from './lib/tessera-server.js'
import { fmt, fmtMiB, fmtMiBs, MiB, mibPerSecond, table } from './lib/timing.js'
import { syncDisks } from './lib/upload-rounds.js'

const SIZE_MIB = intEnv('BENCH_PROFILE_MIB', 512)
const refIndex = process.argv.indexOf('--ref')
const REF = refIndex > 0 ? process.argv[refIndex + 1] : '51f426f'

interface Profiled {
  label: string
  upload: WholeUploadResult
  summary: ProfileSummary
  peakRss: number
}

/** One upload to `tree`'s build under --cpu-prof; the profile is written when the server exits. */
async function profileOne(label: string, tree: string, file: string, root: string): Promise<Profiled> {
  const dir = path.join(root, `cpu-${label.replace(/\W+/g, '-')}`)
  const built = builtTessera(tree)
  const command: TesseraCommand = {
    ...built,
    args: ['--cpu-prof', `--cpu-prof-dir=${dir}`, ...built.args],
    label: `node --cpu-prof ${built.args[0]}`,
  }
  const upload = await withTessera(
    command,
    'SQLite',
    `profile-${label.replace(/\W+/g, '-')}`,
    root,
    async (server) => {
      await syncDisks()
      return runClient<WholeUploadResult>(
        'fetch-upload.ts',
        {
          base: server.process.url,
          token: server.token,
          file,
          chunkSize: SETTINGS.chunkSize,
          concurrency: 8,
        },
        transferTimeout(SIZE_MIB * MiB),
      )
    },
  )
  const peakRss = RSS_PEAKS.at(-1)?.report.kernelPeak ?? Number.NaN
  const profiles = (await readdir(dir)).filter((name) => name.endsWith('.cpuprofile'))
  if (profiles.length !== 1) throw new Error(`expected one profile in ${dir}, found ${profiles.length}`)
  const summary = summarize(
    await readProfile(path.join(dir, profiles[0]!)),
    upload.startMicros,
    upload.endMicros,
  )
  say(`${label}: ${fmtMiBs(mibPerSecond(upload.bytes, upload.ms))}, server peak RSS ${fmtMiB(peakRss)}`)
  return { label, upload, summary, peakRss }
}

function printTable(runs: Profiled[]): void {
  const chunks = Math.ceil((SIZE_MIB * MiB) / SETTINGS.chunkSize)
  const header = [
    'server main thread during the upload',
    ...runs.flatMap((run) => [`${run.label} ms`, 'ms/chunk', '%']),
  ]
  const row = (name: string, value: (run: Profiled) => number) => [
    name,
    ...runs.flatMap((run) => {
      const ms = value(run)
      return [fmt(ms, 0), fmt(ms / chunks, 2), fmt((100 * ms) / run.summary.windowMs, 1)]
    }),
  ]
  const busy = (run: Profiled) => run.summary.windowMs - run.summary.ms.get('idle')!
  console.log(
    table(
      [
        header,
        ...CATEGORIES.map((category) => row(category, (run) => run.summary.ms.get(category)!)),
        row('= busy (all but idle)', busy),
        row('= wall time of the upload', (run) => run.summary.windowMs),
      ],
      ['l', ...runs.flatMap(() => ['r', 'r', 'r'] as Array<'l' | 'r'>)],
    ),
  )
  for (const run of runs) {
    const speed = fmtMiBs(mibPerSecond(run.upload.bytes, run.upload.ms))
    console.log(
      `\n${run.label}: ${speed} whole upload (client hashing included), server peak RSS ${fmtMiB(run.peakRss)}; heaviest functions:`,
    )
    console.log(
      table(
        [['function', 'category', 'ms'], ...run.summary.top.map((t) => [t.name, t.category, fmt(t.ms, 0)])],
        ['l', 'l', 'r'],
      ),
    )
  }
}

async function main(): Promise<number> {
  const root = await beginBenchmark({
    title: 'Tessera upload profile',
    settings: [`${SIZE_MIB} MiB, 4 MiB chunks, Node fetch with 8 PUTs in flight, SQLite; before = ${REF}`],
    tmpPrefix: 'tessera-profile-',
  })
  const current = await buildTessera()
  const before = REF ? await phase(`build ${REF} in a worktree`, () => buildBaseline(REF, root)) : undefined
  const file = path.join(root, `random-${SIZE_MIB}MiB.bin`)
  await phase(`generate ${SIZE_MIB} MiB`, () => writeRandomFile(file, SIZE_MIB * MiB))
  const runs: Profiled[] = []
  const targets = [...(before ? [{ label: `before (${REF})`, tree: before }] : [])]
  if (current) targets.push({ label: 'this checkout', tree: REPO_ROOT })
  for (const target of targets) {
    const run = await phase(`profile ${target.label}`, () =>
      profileOne(target.label, target.tree, file, root),
    )
    if (run) runs.push(run)
  }
  if (runs.length > 0) {
    console.log(
      `\n${'='.repeat(110)}\nWHERE AN UPLOAD'S TIME GOES (server main thread, self time; ${SIZE_MIB / 4} chunks)\n`,
    )
    printTable(runs)
  }
  return failedPhasesExitCode()
}

runBenchmark(main)

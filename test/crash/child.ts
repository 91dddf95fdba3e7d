/**
 * The crash tests' child process: opens the stores from a configuration as the server does
 * (main.ts), builds the services, and performs one operation. The parent starts it with
 * TESSERA_CRASH_AT set, so that it SIGKILLs itself at that point of the operation; if it ever
 * gets to the end, it says so on stdout and exits 0, which the parent counts as a failure.
 *
 *   node --import tsx test/crash/child.ts '<scenario as JSON>'
 *
 * The configuration comes only from the scenario's `env` (never from this process's
 * environment), so the parent can reopen exactly the same stores afterwards. The test imports
 * only this module's types, so the operation below runs only when it is started as a script.
 */
import { createReadStream } from 'node:fs'
import { openServices } from '../../src/composition.js'
import { loadConfig } from '../../src/config.js'

export type ChildOperation =
  | {
      op: 'put-chunk'
      userId: string
      uploadId: string
      index: number
      hash: string
      size: number
      file: string
    }
  | { op: 'complete'; userId: string; uploadId: string }
  | { op: 'purge'; userId: string; nodeId: string }
  | { op: 'gc'; orphans: boolean }

export type ChildScenario = ChildOperation & {
  /** DATA_DIR, DATABASE_URL, GC_GRACE_SECONDS...: what loadConfig reads. */
  env: Record<string, string>
  /** The child's clock runs this far ahead of the real one (a virtual clock pushed forward). */
  clockOffsetMs: number
}

async function main(scenario: ChildScenario): Promise<void> {
  const config = loadConfig(scenario.env)
  const clock = () => Date.now() + scenario.clockOffsetMs
  const { services, close } = await openServices({ ...config, bus: { kind: 'local' } }, clock)
  const { meta } = services
  const userOf = async (id: string) => {
    const user = await meta.users.findById(id)
    if (!user) throw new Error(`no user ${id}`)
    return user
  }
  switch (scenario.op) {
    case 'put-chunk': {
      const { uploadId, index, hash, size, file } = scenario
      const user = await userOf(scenario.userId)
      const body = createReadStream(file)
      await services.uploads.putChunk({ user, uploadId, index, hash, contentLength: size, body })
      break
    }
    case 'complete':
      await services.uploads.complete(await userOf(scenario.userId), scenario.uploadId)
      break
    case 'purge':
      await services.trash.purge(await userOf(scenario.userId), scenario.nodeId)
      break
    case 'gc':
      await services.gc.run({ orphans: scenario.orphans })
      break
  }
  await close()
  process.stdout.write('crash child: finished without crashing\n')
}

await main(JSON.parse(process.argv[2] ?? 'null') as ChildScenario)

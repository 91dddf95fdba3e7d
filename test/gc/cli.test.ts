import { randomBytes } from 'node:crypto'
import { mkdir, readFile, rm, utimes, writeFile } from 'node:fs/promises'
import path from 'node:path'
import Database from 'better-sqlite3'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { newGeneration } from '../../src/domain/blob-key.js'
import { ApiClient, sha256 } from '../helpers/api-client.js'
import { type CommandRun, runTessera } from '../helpers/tessera-cli.js'
import { startTestServer } from '../helpers/test-server.js'
import {
  copiesOnDisk,
  copyPath,
  deleteAndPurge,
  fileExists,
  randomParts,
  rowCopyPath,
  uploadParts,
} from './gc-helpers.js'

/** The collector's grace period the commands run with: the shortest the configuration allows. */
const GRACE_SECONDS = 60

/**
 * `tessera <args>` as an operator runs it, in its own process, on the data directory a test
 * server prepared (and has closed), on the real clock: between runs the test moves the
 * database's marks (and a file's time) back past the grace period instead of waiting.
 */
const tessera = (dataDir: string, ...args: string[]) =>
  runTessera(args, { DATA_DIR: dataDir, GC_GRACE_SECONDS: String(GRACE_SECONDS) })

/** As if a grace period and a bit had passed since the collector marked what it marked. */
function ageMarks(dataDir: string): void {
  const database = new Database(path.join(dataDir, 'tessera.db'))
  try {
    database
      .prepare('update chunks set marked_at = marked_at - ? where marked_at is not null')
      .run(PAST_GRACE)
  } finally {
    database.close()
  }
}

const PAST_GRACE = (GRACE_SECONDS + 60) * 1000

/** The JSON report of a `--json` run (its only line on stdout). */
const json = (run: CommandRun) => JSON.parse(run.stdout.trim())

describe('tessera gc and scrub (SQLite)', () => {
  let dataDir: string
  let kept: Buffer[]
  let garbage: Buffer[]
  /** The copies the rows of `kept` and `garbage` name, read while the server was up. */
  let keptCopies: string[]
  let garbageCopies: string[]
  const present = (copies: readonly string[]) => Promise.all(copies.map((copy) => fileExists(copy)))
  /** Whether any copy of each hash is on disk, of any generation. */
  const anyCopy = (hashes: readonly string[]) =>
    Promise.all(hashes.map(async (hash) => (await copiesOnDisk(dataDir, hash)).length > 0))

  beforeAll(async () => {
    const server = await startTestServer('sqlite', { GC_INTERVAL_SECONDS: '0' })
    dataDir = server.dataDir
    try {
      const ann = await new ApiClient(server.api).register()
      kept = randomParts(4)
      garbage = randomParts(3, 2048)
      await uploadParts(ann, 'kept.bin', kept)
      await deleteAndPurge(ann, (await uploadParts(ann, 'garbage.bin', garbage)).id)
      keptCopies = await Promise.all(kept.map((part) => rowCopyPath(server, sha256(part))))
      garbageCopies = await Promise.all(garbage.map((part) => rowCopyPath(server, sha256(part))))
    } finally {
      // Closed, not stopped: stopping deletes the data directory the commands work on.
      await server.close()
    }
  })
  afterAll(async () => {
    if (dataDir) await rm(dataDir, { recursive: true, force: true })
  })

  it('gc --dry-run reports the garbage and deletes nothing; gc marks, then deletes', {
    timeout: 120_000,
  }, async () => {
    const garbageHashes = garbage.map(sha256)
    const garbageBytes = garbage.reduce((sum, part) => sum + part.length, 0)
    const keptHashes = kept.map(sha256)

    const dryFirst = await tessera(dataDir, 'gc', '--dry-run', '--json')
    expect(dryFirst.code, dryFirst.stderr).toBe(0)
    expect(json(dryFirst)).toMatchObject({ dryRun: true, swept: 0, marked: 3, errors: [] })
    expect(await present(garbageCopies)).toEqual([true, true, true])

    const mark = await tessera(dataDir, 'gc', '--json')
    expect(mark.code, mark.stderr).toBe(0)
    expect(json(mark)).toMatchObject({ dryRun: false, swept: 0, marked: 3, errors: [] })
    expect(await present(garbageCopies)).toEqual([true, true, true])
    // Still within the grace period: nothing goes yet.
    expect(json(await tessera(dataDir, 'gc', '--dry-run', '--json'))).toMatchObject({ swept: 0 })

    ageMarks(dataDir)
    const dryDue = await tessera(dataDir, 'gc', '--dry-run', '--json')
    expect(json(dryDue)).toMatchObject({ dryRun: true, swept: 3, sweptBytes: garbageBytes, marked: 0 })
    expect(await present(garbageCopies)).toEqual([true, true, true])

    const sweep = await tessera(dataDir, 'gc', '--json')
    expect(sweep.code, sweep.stderr).toBe(0)
    expect(json(sweep)).toMatchObject({
      dryRun: false,
      swept: 3,
      sweptBytes: garbageBytes,
      marked: 0,
      errors: [],
    })
    expect(await anyCopy(garbageHashes)).toEqual([false, false, false])
    expect(await present(keptCopies)).toEqual([true, true, true, true])

    // Bytes no row knows (a crash mid-upload): only --orphans walks the store for them.
    const orphan = randomBytes(333)
    const orphanFile = copyPath(dataDir, { hash: sha256(orphan), generation: newGeneration() })
    await mkdir(path.dirname(orphanFile), { recursive: true })
    await writeFile(orphanFile, orphan)
    // Written long enough ago not to be an upload in flight.
    const past = new Date(Date.now() - PAST_GRACE)
    await utimes(orphanFile, past, past)
    expect(json(await tessera(dataDir, 'gc', '--json'))).toMatchObject({ swept: 0, orphans: 0 })
    expect(json(await tessera(dataDir, 'gc', '--dry-run', '--orphans', '--json'))).toMatchObject({
      orphans: 1,
    })
    expect(await fileExists(orphanFile)).toBe(true)
    const text = await tessera(dataDir, 'gc', '--orphans')
    expect(text.code, text.stderr).toBe(0)
    expect(text.stdout).toMatch(/^gc: deleted 0 chunks .*orphans 1;/)
    expect(await fileExists(orphanFile)).toBe(false)
    expect(await present(keptCopies)).toEqual([true, true, true, true])
    expect(await anyCopy(keptHashes)).toEqual([true, true, true, true])
  })

  it('scrub exits 0 on a clean store, and 1 naming a corrupt chunk, which it leaves in place', {
    timeout: 120_000,
  }, async () => {
    const clean = await tessera(dataDir, 'scrub', '--json')
    expect(clean.code, clean.stdout + clean.stderr).toBe(0)
    expect(json(clean)).toMatchObject({ clean: true, checked: kept.length, corrupt: [], missing: [] })

    const victim = sha256(kept[1] as Buffer)
    const file = keptCopies[1] as string
    const bytes = await readFile(file)
    bytes[bytes.length - 1] = (bytes[bytes.length - 1] as number) ^ 0x80
    await writeFile(file, bytes)

    const dirty = await tessera(dataDir, 'scrub', '--json')
    expect(dirty.code).toBe(1)
    expect(dirty.stdout).toContain(victim)
    // Marked damaged (so that the next upload of its bytes replaces it), never deleted.
    expect(json(dirty)).toMatchObject({
      clean: false,
      missing: [],
      readErrors: [],
      unknown: [],
      markedDamaged: [victim],
      damaged: 1,
    })
    expect(json(dirty).corrupt).toEqual([
      { hash: victim, actual: sha256(bytes), size: bytes.length, expectedSize: bytes.length },
    ])

    const text = await tessera(dataDir, 'scrub')
    expect(text.code).toBe(1)
    expect(text.stdout).toContain('PROBLEMS FOUND')
    expect(text.stderr).toContain(`corrupt: ${victim}`)
    // Found again, but marked already: it stands damaged.
    expect(text.stderr).not.toContain('marked damaged')
    expect(text.stderr).toContain('1 chunk(s) stand damaged')
    expect((await readFile(file)).equals(bytes)).toBe(true)

    // A bad fraction is a usage error, not a scrub.
    expect((await tessera(dataDir, 'scrub', '--fraction', '2')).code).not.toBe(0)
  })
})

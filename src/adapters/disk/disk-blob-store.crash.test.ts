import { spawn } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { mkdtemp, readdir, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { afterAll, describe, expect, it } from 'vitest'
import { fingerprint, readAll } from '../../../test/helpers/streams.js'
import { type BlobKey, newGeneration } from '../../domain/blob-key.js'
import { MiB } from '../../domain/chunk-plan.js'
import { sha256Hex } from '../../domain/hashes.js'
import type { CrashPoint } from '../../support/crash-points.js'
import { DiskBlobStore } from './disk-blob-store.js'

const scratch = await mkdtemp(join(tmpdir(), 'tessera-disk-crash-'))
afterAll(() => rm(scratch, { recursive: true, force: true }))

const repoRoot = fileURLToPath(new URL('../../..', import.meta.url))
const storeModule = new URL('./disk-blob-store.ts', import.meta.url).href

/**
 * The child: puts the chunk in `chunkPath` under the key `hash`.`generation` into a DiskBlobStore
 * at `root`. It runs the TypeScript sources through tsx, as `npm run dev` does, so nothing needs
 * building first.
 */
const CHILD_SCRIPT = `
const [storeModule, root, chunkPath, hash, generation] = process.argv.slice(1)
const { createReadStream } = await import('node:fs')
const { DiskBlobStore } = await import(storeModule)
await new DiskBlobStore({ root }).put({ hash, generation }, createReadStream(chunkPath))
`

interface ChildExit {
  code: number | null
  signal: NodeJS.Signals | null
  stderr: string
}

function putInChild(crashAt: CrashPoint, root: string, chunkPath: string, key: BlobKey): Promise<ChildExit> {
  const args = [
    '--import',
    'tsx',
    '--input-type=module',
    '-e',
    CHILD_SCRIPT,
    storeModule,
    root,
    chunkPath,
    key.hash,
    key.generation,
  ]
  const child = spawn(process.execPath, args, {
    cwd: repoRoot,
    env: { ...process.env, TESSERA_CRASH_AT: crashAt },
    stdio: ['ignore', 'ignore', 'pipe'],
  })
  let stderr = ''
  child.stderr.setEncoding('utf8').on('data', (text: string) => {
    stderr += text
  })
  return new Promise((resolve, reject) => {
    child.on('error', reject)
    child.on('close', (code, signal) => resolve({ code, signal, stderr }))
  })
}

/**
 * A SIGKILL loses nothing the kernel has already accepted, so after one the store holds exactly
 * what the put had got to: no chunk before the link, the whole chunk from then on. (A power cut
 * at 'after-link' could also lose the link; either way the name never shows a partial chunk.)
 */
const CASES: ReadonlyArray<{ crashAt: CrashPoint; stored: boolean; leavesTempFile: boolean }> = [
  { crashAt: 'blob.put.after-temp-write', stored: false, leavesTempFile: true },
  { crashAt: 'blob.put.after-fsync', stored: false, leavesTempFile: true },
  { crashAt: 'blob.put.after-link', stored: true, leavesTempFile: true },
  { crashAt: 'blob.put.after-dir-fsync', stored: true, leavesTempFile: false },
]

describe('DiskBlobStore killed in the middle of a put', () => {
  it.each(CASES)(
    'at $crashAt, holds the whole chunk or none of it',
    async ({ crashAt, stored, leavesTempFile }) => {
      const data = randomBytes(4 * MiB)
      const hash = sha256Hex(data)
      const key = { hash, generation: newGeneration() }
      const root = join(scratch, crashAt)
      const chunkPath = join(scratch, `${crashAt}.chunk`)
      await writeFile(chunkPath, data)

      const exit = await putInChild(crashAt, root, chunkPath, key)
      expect(exit, exit.stderr).toMatchObject({ code: null, signal: 'SIGKILL' })
      expect(await readdir(join(root, 'tmp'))).toHaveLength(leavesTempFile ? 1 : 0)

      const store = new DiskBlobStore({ root, staleTempAgeMs: 0 })
      await store.init()
      expect(await readdir(join(root, 'tmp'))).toEqual([])
      const body = await store.get(key)
      const bytes = body === null ? null : fingerprint(await readAll(body))
      expect(bytes).toEqual(stored ? fingerprint(data) : null)
      expect(await store.has(key)).toBe(stored)
      // Under its own key and no other: no bare-hash copy, no other generation.
      const listed: BlobKey[] = []
      for await (const { hash, generation } of store.list()) listed.push({ hash, generation })
      expect(listed).toEqual(stored ? [key] : [])
    },
  )
})

import { randomBytes } from 'node:crypto'
import { lstat, mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join, relative } from 'node:path'
import { afterAll, beforeEach, describe, expect, it } from 'vitest'
import { PowerLossFileSystem } from './power-loss-fs.js'
import { readAll } from './streams.js'

const scratch = await mkdtemp(join(tmpdir(), 'tessera-power-loss-fs-'))
afterAll(() => rm(scratch, { recursive: true, force: true }))

let root: string
let shim: PowerLossFileSystem

/** A root holding `old.txt` ('old') and an empty `dir/`, taken as durable by the shim. */
beforeEach(async () => {
  root = join(scratch, randomBytes(6).toString('hex'))
  await mkdir(join(root, 'dir'), { recursive: true })
  await writeFile(join(root, 'old.txt'), 'old')
  shim = await PowerLossFileSystem.over(root)
})

const at = (...names: string[]) => join(root, ...names)

/** Every file (its text) and directory ('<dir>') under the root, by relative path. */
async function tree(dir = root): Promise<Record<string, string>> {
  const found: Record<string, string> = {}
  for (const name of await readdir(dir)) {
    const path = join(dir, name)
    if ((await lstat(path)).isDirectory()) {
      found[relative(root, path)] = '<dir>'
      Object.assign(found, await tree(path))
    } else {
      found[relative(root, path)] = await readFile(path, 'utf8')
    }
  }
  return found
}

/** Creates a file through the shim, fsyncing its data only when asked. */
async function createFile(path: string, text: string, { sync }: { sync: boolean }): Promise<void> {
  const file = await shim.open(path, 'wx')
  await file.write(text)
  if (sync) await file.sync()
  await file.close()
}

/** What DiskBlobStore does to make a directory's entries durable. */
async function syncDir(path: string): Promise<void> {
  const dir = await shim.open(path, 'r')
  await dir.sync()
  await dir.close()
}

describe('PowerLossFileSystem', () => {
  it('takes what is on disk when it is made as durable', async () => {
    await shim.powerLoss()
    expect(await tree()).toEqual({ dir: '<dir>', 'old.txt': 'old' })
  })

  describe('file data is durable as of the last fsync', () => {
    it('a new file never fsynced comes back empty, even when its name is durable', async () => {
      await createFile(at('new.txt'), 'lost', { sync: false })
      await syncDir(root)
      expect(await readFile(at('new.txt'), 'utf8')).toBe('lost')

      await shim.powerLoss()
      expect(await tree()).toEqual({ dir: '<dir>', 'old.txt': 'old', 'new.txt': '' })
    })

    it('an unsynced rewrite of a durable file is undone', async () => {
      const file = await shim.open(at('old.txt'), 'w')
      await file.write('new')
      await file.close()

      await shim.powerLoss()
      expect(await readFile(at('old.txt'), 'utf8')).toBe('old')
    })

    it('bytes written after the last fsync are lost', async () => {
      const file = await shim.open(at('new.txt'), 'wx')
      await file.write('synced ')
      await file.sync()
      await file.write('unsynced')
      await file.datasync()
      await file.write(' lost')
      await file.close()
      await syncDir(root)

      await shim.powerLoss()
      expect(await readFile(at('new.txt'), 'utf8')).toBe('synced unsynced')
    })

    it('comes back with the mtime it had when fsynced', async () => {
      await createFile(at('new.txt'), 'kept', { sync: true })
      await syncDir(root)
      const before = await stat(at('new.txt'))

      await shim.powerLoss()
      expect(Math.floor((await stat(at('new.txt'))).mtimeMs)).toBe(Math.floor(before.mtimeMs))
    })
  })

  describe('directory entries are durable as of the directory fsync', () => {
    it('a file fsynced in a directory that was not loses its name', async () => {
      await createFile(at('dir', 'new.txt'), 'data', { sync: true })

      await shim.powerLoss()
      expect(await tree()).toEqual({ dir: '<dir>', 'old.txt': 'old' })
    })

    it('a file fsynced in a directory fsynced after it is kept', async () => {
      await createFile(at('dir', 'new.txt'), 'data', { sync: true })
      await syncDir(at('dir'))

      await shim.powerLoss()
      expect(await tree()).toEqual({ dir: '<dir>', 'dir/new.txt': 'data', 'old.txt': 'old' })
    })

    it('an unlink without a directory fsync is undone, with the durable bytes', async () => {
      await createFile(at('dir', 'a.txt'), 'durable', { sync: true })
      await syncDir(at('dir'))
      const file = await shim.open(at('dir', 'a.txt'), 'a')
      await file.write(' and not')
      await file.close()
      await shim.unlink(at('dir', 'a.txt'))
      await shim.unlink(at('old.txt'))

      await shim.powerLoss()
      expect(await tree()).toEqual({ dir: '<dir>', 'dir/a.txt': 'durable', 'old.txt': 'old' })
    })

    it('an unlink followed by a directory fsync stays done', async () => {
      await shim.unlink(at('old.txt'))
      await syncDir(root)

      await shim.powerLoss()
      expect(await tree()).toEqual({ dir: '<dir>' })
    })

    it('a file linked into a synced directory after its data was fsynced is kept; its temp name is not', async () => {
      await mkdir(at('tmp'))
      shim = await PowerLossFileSystem.over(root)
      await createFile(at('tmp', 'chunk'), 'whole', { sync: true })
      await shim.link(at('tmp', 'chunk'), at('dir', 'chunk'))
      await syncDir(at('dir'))

      await shim.powerLoss()
      expect(await tree()).toEqual({ dir: '<dir>', 'dir/chunk': 'whole', 'old.txt': 'old', tmp: '<dir>' })
    })

    it('tracks files by inode: one fsync through any name covers every name, which stay one file', async () => {
      await createFile(at('a'), 'first', { sync: true })
      await shim.link(at('a'), at('dir', 'b'))
      await syncDir(root)
      await syncDir(at('dir'))
      const writer = await shim.open(at('a'), 'a')
      await writer.write(' second')
      await writer.close()
      const throughOtherName = await shim.open(at('dir', 'b'), 'r')
      await throughOtherName.sync()
      await throughOtherName.close()

      await shim.powerLoss()
      expect(await tree()).toMatchObject({ a: 'first second', 'dir/b': 'first second' })
      const [a, b] = [await stat(at('a')), await stat(at('dir', 'b'))]
      expect(a.ino).toBe(b.ino)
      expect(a.nlink).toBe(2)
    })

    it('a freed inode number taken by a new file does not bring the old bytes back', async () => {
      await createFile(at('dir', 'a'), 'old bytes', { sync: true })
      await syncDir(at('dir'))
      await shim.unlink(at('dir', 'a'))
      // 'w' rather than 'wx': the shim must see for itself that the inode is new.
      const file = await shim.open(at('dir', 'b'), 'w')
      await file.close()
      await syncDir(at('dir'))

      await shim.powerLoss()
      expect(await tree()).toMatchObject({ 'dir/b': '' })
    })
  })

  describe('mkdir', () => {
    it('a directory not made durable in its parent vanishes with everything in it', async () => {
      await shim.mkdir(at('ab', 'cd'), { recursive: true })
      await createFile(at('ab', 'cd', 'chunk'), 'data', { sync: true })
      await syncDir(at('ab', 'cd'))
      await syncDir(at('ab'))

      await shim.powerLoss()
      expect(await tree()).toEqual({ dir: '<dir>', 'old.txt': 'old' })
    })

    it('directories made durable all the way up keep what was made durable in them', async () => {
      await shim.mkdir(at('ab', 'cd'), { recursive: true })
      await createFile(at('ab', 'cd', 'chunk'), 'data', { sync: true })
      await syncDir(at('ab', 'cd'))
      await syncDir(at('ab'))
      await syncDir(root)

      await shim.powerLoss()
      expect(await tree()).toMatchObject({ ab: '<dir>', 'ab/cd': '<dir>', 'ab/cd/chunk': 'data' })
    })
  })

  describe('cutting power in the middle', () => {
    it('lets n calls through, holds every later one, and power loss keeps only what was durable', async () => {
      const cut = shim.cutPowerAfter(2)
      let finished = false
      const sequence = (async () => {
        await createFile(at('dir', 'new.txt'), 'data', { sync: true })
        finished = true
      })()
      void sequence

      await cut
      expect(shim.calls.map(({ operation }) => operation)).toEqual(['open', 'fd.write'])
      expect(await readFile(at('dir', 'new.txt'), 'utf8')).toBe('data')
      await shim.powerLoss()
      expect(finished).toBe(false)
      expect(await tree()).toEqual({ dir: '<dir>', 'old.txt': 'old' })
      // Power is back: calls go through again.
      expect((await shim.stat(at('old.txt'))).size).toBe(3)
    })

    it('handles opened before a power loss fail afterwards', async () => {
      const file = await shim.open(at('old.txt'), 'r')
      await shim.powerLoss()
      await expect(file.sync()).rejects.toMatchObject({ code: 'EBADF' })
    })

    it('a killed process loses nothing the kernel had, and makes nothing durable', async () => {
      const file = await shim.open(at('dir', 'new.txt'), 'wx')
      await file.write('in the page cache')
      await shim.killProcess()
      await expect(file.sync()).rejects.toMatchObject({ code: 'EBADF' })
      expect(await readFile(at('dir', 'new.txt'), 'utf8')).toBe('in the page cache')

      await shim.powerLoss()
      expect(await tree()).toEqual({ dir: '<dir>', 'old.txt': 'old' })
    })

    it('after a power loss everything on disk is durable', async () => {
      await createFile(at('dir', 'new.txt'), 'data', { sync: true })
      await syncDir(at('dir'))
      await shim.powerLoss()
      const afterFirst = await tree()

      await shim.powerLoss()
      expect(await tree()).toEqual(afterFirst)
    })
  })

  it("reads through a handle's stream go through the shim, as get's do", async () => {
    const file = await shim.open(at('old.txt'), 'r')
    const text = await readAll(file.createReadStream())
    expect(text.toString()).toBe('old')
    expect(shim.calls.map(({ operation }) => operation)).toEqual(
      expect.arrayContaining(['open', 'fd.read', 'fd.close']),
    )
  })

  it('refuses paths outside its root', async () => {
    await expect(shim.stat(scratch)).rejects.toThrow(/outside its root/)
  })
})

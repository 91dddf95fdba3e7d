import { describe, expect, it } from 'vitest'
import { serviceScene, storeFile } from '../../test/helpers/service-files.js'
import { VersionHistory } from './version-history.js'

const DAY = 24 * 3_600_000

describe('VersionHistory', () => {
  const s = serviceScene()

  /** A file with versions 1 to `count`, a day apart. */
  const fileWithVersions = async (count: number) => {
    let file = await storeFile(s.services, s.ann, 'a.txt', 'version 1')
    for (let version = 2; version <= count; version++) {
      s.fx.advance(DAY)
      file = await storeFile(s.services, s.ann, 'a.txt', `version ${version}`, { baseVersion: version - 1 })
    }
    return file
  }
  const versionsOf = async (fileId: string) =>
    (await s.services.versions.list(s.ann, fileId)).map((v) => v.version).sort((a, b) => a - b)

  it('keeps at most maxVersions, dropping the oldest, never the current one', async () => {
    const file = await fileWithVersions(4)
    const history = new VersionHistory(s.fx.meta, { maxVersions: 2, maxAgeMs: 0, thin: false })
    const pruned = await s.fx.meta.transaction((tx) =>
      history.prune(tx, { nodeId: file.id, currentVersion: 4, now: s.fx.now() }),
    )
    expect(pruned).toBe(2)
    expect(await versionsOf(file.id)).toEqual([3, 4])
  })

  it('sweeps the versions that aged out since, and reports what it did', async () => {
    const file = await fileWithVersions(3)
    const history = new VersionHistory(s.fx.meta, { maxVersions: 100, maxAgeMs: 1.5 * DAY, thin: false })
    const report = await history.sweep(s.fx.now())
    expect(report).toMatchObject({ pruned: 1, policyChanged: true })
    expect(await versionsOf(file.id)).toEqual([2, 3])
    s.fx.advance(10 * DAY)
    expect((await history.sweep(s.fx.now())).policyChanged).toBe(false)
    expect(await versionsOf(file.id)).toEqual([3])
  })
})

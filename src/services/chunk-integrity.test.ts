import { createHash } from 'node:crypto'
import { beforeEach, describe, expect, it } from 'vitest'
import { serviceScene, storeFile } from '../../test/helpers/service-files.js'
import type { BlobKey } from '../domain/blob-key.js'
import { ChunkIntegrity, type DamageEvent } from './chunk-integrity.js'

describe('ChunkIntegrity', () => {
  const s = serviceScene()
  let damage: DamageEvent[]
  let integrity: ChunkIntegrity
  beforeEach(() => {
    damage = []
    integrity = new ChunkIntegrity(s.fx.meta, s.fx.now, (event) => damage.push(event))
  })

  /** The stored copy of a file holding `content` in one chunk. */
  const storedCopy = async (content: string): Promise<BlobKey> => {
    await storeFile(s.services, s.ann, `${content}.txt`, content)
    const hash = createHash('sha256').update(content).digest('hex')
    const chunk = await s.fx.meta.chunks.find(hash)
    if (!chunk) throw new Error('the chunk was stored')
    return { hash, generation: chunk.generation }
  }

  it('marks the chunk damaged on the first report and tells the operator; later reports are known damage', async () => {
    const copy = await storedCopy('precious')
    expect(await integrity.damaged(copy, 'scrub', 'missing')).toBe('marked')
    expect(await s.fx.meta.chunks.find(copy.hash)).toMatchObject({ damaged: true })
    expect(await integrity.damaged(copy, 'download', 'missing')).toBe('known')
    expect(damage).toEqual([
      { ...copy, source: 'scrub', problem: 'missing', marked: true },
      { ...copy, source: 'download', problem: 'missing', marked: false },
    ])
  })

  it('reports nothing for a copy the chunk no longer uses (stale), and leaves the chunk sound', async () => {
    const copy = await storedCopy('precious')
    const other = {
      hash: copy.hash,
      generation: copy.generation === 'a'.repeat(16) ? 'b'.repeat(16) : 'a'.repeat(16),
    }
    expect(await integrity.damaged(other, 'download', 'missing')).toBe('stale')
    const unknown = { hash: 'c'.repeat(64), generation: copy.generation }
    expect(await integrity.damaged(unknown, 'scrub', 'missing')).toBe('stale')
    expect(damage).toEqual([])
    expect(await s.fx.meta.chunks.find(copy.hash)).toMatchObject({ damaged: false })
  })
})

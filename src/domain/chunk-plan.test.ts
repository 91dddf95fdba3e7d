import { describe, expect, it } from 'vitest'
import { DEFAULT_CHUNK_SIZE, MAX_CHUNK_SIZE, planChunks } from './chunk-plan.js'
import { AppError } from './errors.js'

const h = 'a'.repeat(64)

describe('planChunks', () => {
  it('lays out fixed 4 MiB chunks with a short last one', () => {
    const size = 2 * DEFAULT_CHUNK_SIZE + 5
    const plan = planChunks({ size, chunkHashes: [h, h, h] })
    expect(plan.chunks.map((c) => [c.offset, c.size])).toEqual([
      [0, DEFAULT_CHUNK_SIZE],
      [DEFAULT_CHUNK_SIZE, DEFAULT_CHUNK_SIZE],
      [2 * DEFAULT_CHUNK_SIZE, 5],
    ])
    expect(plan.chunkSize).toBe(DEFAULT_CHUNK_SIZE)
  })

  it('has no chunks for an empty file, and exactly one for exactly 4 MiB', () => {
    expect(planChunks({ size: 0, chunkHashes: [] }).chunks).toEqual([])
    expect(planChunks({ size: DEFAULT_CHUNK_SIZE, chunkHashes: [h] }).chunks).toHaveLength(1)
  })

  it('plans a 10 GiB file as 2,560 chunks', () => {
    const size = 10 * 1024 ** 3
    expect(planChunks({ size, chunkHashes: Array(2560).fill(h) }).chunks.at(-1)?.offset).toBe(
      size - DEFAULT_CHUNK_SIZE,
    )
  })

  it('accepts declared variable sizes that sum to size', () => {
    const plan = planChunks({ size: 10, chunkHashes: [h, h], chunkSizes: [3, 7] })
    expect(plan.chunks.map((c) => c.offset)).toEqual([0, 3])
    expect(plan.chunkSize).toBe(7)
  })

  it.each([
    [{ size: -1, chunkHashes: [] }],
    [{ size: 1.5, chunkHashes: [h] }],
    [{ size: Number.MAX_SAFE_INTEGER, chunkHashes: [] }],
    [{ size: 5, chunkHashes: [] }],
    [{ size: 5, chunkHashes: [h, h] }],
    [{ size: 5, chunkHashes: ['A'.repeat(64)] }],
    [{ size: 5, chunkHashes: [h], chunkSizes: [4] }],
    [{ size: MAX_CHUNK_SIZE + 1, chunkHashes: [h], chunkSizes: [MAX_CHUNK_SIZE + 1] }],
    [{ size: 0, chunkHashes: [h], chunkSizes: [0] }],
  ])('rejects %j', (input) => {
    expect(() => planChunks(input)).toThrow(AppError)
  })
})

import { describe, expect, it } from 'vitest'
import {
  type ChunkPlanInput,
  DEFAULT_CHUNK_SIZE,
  MAX_CHUNK_SIZE,
  planChunks as planWith,
} from './chunk-plan.js'
import { AppError } from './errors.js'

const h = 'a'.repeat(64)
const KiB = 1024
/** Most cases here declare chunks of a few bytes: no least chunk size. */
const planChunks = (input: ChunkPlanInput) => planWith(input, { minChunkSize: 1 })

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

  describe('with a least chunk size of 64 KiB', () => {
    const plan = (chunkSizes: number[]) =>
      planWith(
        { size: chunkSizes.reduce((a, b) => a + b, 0), chunkHashes: chunkSizes.map(() => h), chunkSizes },
        { minChunkSize: 64 * KiB },
      )

    it('refuses a chunk below it but the last, naming its index', () => {
      expect(() => plan([64 * KiB, 64 * KiB - 1, 10])).toThrow(
        expect.objectContaining({ code: 'INVALID_REQUEST', details: { index: 1 } }),
      )
      expect(() => plan(Array(65_536).fill(1))).toThrow(/chunkSizes\[0\] is 1 bytes/)
    })

    it('takes chunks of exactly that size, any last chunk, and a file of one small chunk', () => {
      expect(plan([64 * KiB, 64 * KiB, 1]).chunks).toHaveLength(3)
      expect(plan([5]).chunks).toHaveLength(1)
      expect(planWith({ size: 5, chunkHashes: [h] }, { minChunkSize: 64 * KiB }).chunks).toHaveLength(1)
      const fixed = planWith(
        { size: 2 * DEFAULT_CHUNK_SIZE + 1, chunkHashes: [h, h, h] },
        { minChunkSize: DEFAULT_CHUNK_SIZE },
      )
      expect(fixed.chunks.map((c) => c.size)).toEqual([DEFAULT_CHUNK_SIZE, DEFAULT_CHUNK_SIZE, 1])
    })
  })
})

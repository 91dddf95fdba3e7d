import { describe, expect, it } from 'vitest'
import type { NodeRecord } from '../../domain/model.js'
import { checkDeclaration, replacedFile } from './declaration.js'

const HASH = 'a'.repeat(64)

describe('checkDeclaration', () => {
  it('normalizes the name and lays out the chunks', () => {
    const declared = checkDeclaration(
      { filename: 'Cafe\u0301.txt', size: 3, chunkHashes: [HASH, HASH], chunkSizes: [2, 1], baseVersion: 4 },
      2,
    )
    expect(declared.filename).toBe('Café.txt')
    expect(declared.baseVersion).toBe(4)
    expect(declared.plan).toMatchObject({ size: 3, chunkSize: 2 })
    expect(declared.plan.chunks.map((chunk) => chunk.offset)).toEqual([0, 2])
  })

  it('reports faults in the order clients have always been told: name, chunks, base version', () => {
    const fault = (declaration: Parameters<typeof checkDeclaration>[0]) => {
      try {
        checkDeclaration(declaration, 1)
      } catch (error) {
        return { code: (error as { code: string }).code, message: (error as Error).message }
      }
      throw new Error('expected a refusal')
    }
    expect(fault({ filename: 42, size: 1, chunkHashes: ['bad'], baseVersion: 0 })).toEqual({
      code: 'INVALID_NAME',
      message: 'name must be a string',
    })
    expect(fault({ filename: 'a', size: 1, chunkHashes: ['bad'], baseVersion: 0 })).toEqual({
      code: 'INVALID_REQUEST',
      message: 'chunkHashes[0] is not a lowercase hex SHA-256',
    })
    for (const baseVersion of [0, 1.5, 2 ** 53]) {
      expect(fault({ filename: 'a', size: 1, chunkHashes: [HASH], baseVersion })).toEqual({
        code: 'INVALID_REQUEST',
        message: 'baseVersion must be a positive integer',
      })
    }
  })

  it('takes an absent or null base version as none', () => {
    expect(checkDeclaration({ filename: 'a', size: 0, chunkHashes: [] }, 1).baseVersion).toBeNull()
    expect(
      checkDeclaration({ filename: 'a', size: 0, chunkHashes: [], baseVersion: null }, 1).baseVersion,
    ).toBeNull()
  })
})

describe('replacedFile', () => {
  const file = { kind: 'file', currentVersion: 3 } as NodeRecord
  it('is the live file of the name, unless the client based its copy on another version', () => {
    expect(replacedFile(file, null)).toBe(file)
    expect(replacedFile(file, 3)).toBe(file)
    expect(replacedFile(file, 2)).toBeNull()
    expect(replacedFile(null, null)).toBeNull()
    expect(replacedFile({ ...file, kind: 'folder' }, null)).toBeNull()
  })
})

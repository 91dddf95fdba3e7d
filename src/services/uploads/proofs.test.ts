import { createHmac } from 'node:crypto'
import { describe, expect, it } from 'vitest'
import { assertChunkIndex, chunkIndexOf } from './chunk-index.js'
import { MAX_PROOFS_PER_REQUEST, parseProofs, proofDigest, proofMatches } from './proofs.js'

const PROOF = 'ab'.repeat(32)

describe('parseProofs', () => {
  it('answers [index, proof] pairs', () => {
    expect(parseProofs({ '0': PROOF, '2': PROOF }, 3)).toEqual([
      [0, PROOF],
      [2, PROOF],
    ])
  })

  it('refuses an index written with a leading zero, which would let one index appear twice', () => {
    expect(() => parseProofs({ '01': PROOF }, 3)).toThrow(
      expect.objectContaining({ code: 'INVALID_REQUEST', message: 'proofs["01"]: write the index as 1' }),
    )
  })

  it('refuses an index outside the session, or none at all', () => {
    for (const index of ['3', '-1', 'x', '1e2']) {
      expect(() => parseProofs({ [index]: PROOF }, 3)).toThrow(
        expect.objectContaining({ code: 'INVALID_CHUNK_INDEX' }),
      )
    }
  })

  it('refuses a proof that is not a lowercase hex HMAC-SHA256', () => {
    for (const proof of [PROOF.toUpperCase(), 'ab', 42, null]) {
      expect(() => parseProofs({ '0': proof }, 1)).toThrow(
        expect.objectContaining({
          code: 'INVALID_REQUEST',
          message: 'proofs["0"] must be a lowercase hex HMAC-SHA256',
        }),
      )
    }
  })

  it(`refuses more than ${MAX_PROOFS_PER_REQUEST} proofs in one request`, () => {
    const many = Object.fromEntries(
      Array.from({ length: MAX_PROOFS_PER_REQUEST + 1 }, (_, i) => [String(i), PROOF]),
    )
    expect(() => parseProofs(many, MAX_PROOFS_PER_REQUEST + 1)).toThrow(
      expect.objectContaining({ code: 'PAYLOAD_TOO_LARGE' }),
    )
  })
})

describe('proofMatches', () => {
  it('compares a proof with the digest of the expected HMAC', () => {
    const right = createHmac('sha256', 'key').update('bytes').digest()
    const expected = proofDigest(right)
    expect(proofMatches(right.toString('hex'), expected)).toBe(true)
    expect(proofMatches(PROOF, expected)).toBe(false)
  })
})

describe('chunk indexes', () => {
  it('reads decimal digits only, and checks them against the chunk count', () => {
    expect(chunkIndexOf('7')).toBe(7)
    expect(chunkIndexOf('07')).toBe(7)
    for (const raw of ['', '-1', '1.5', ' 1', '1234567890']) expect(chunkIndexOf(raw)).toBeNaN()
    expect(assertChunkIndex(2, 3)).toBe(2)
    expect(() => assertChunkIndex(3, 3)).toThrow(
      expect.objectContaining({
        code: 'INVALID_CHUNK_INDEX',
        message: 'chunk index must be an integer from 0 to 2',
      }),
    )
  })
})

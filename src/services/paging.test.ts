import { describe, expect, it } from 'vitest'
import {
  DEFAULT_PAGE_SIZE,
  decodeCursor,
  encodeCursor,
  LIMIT_MESSAGE,
  MAX_PAGE_SIZE,
  pageLimitOf,
  parseLimit,
} from './paging.js'

const invalidRequest = (message: string) => expect.objectContaining({ code: 'INVALID_REQUEST', message })
/** The key shape a folder listing accepts: `[kind, name]`. */
const listingKey = ([kind, name]: unknown[]) =>
  (kind === 'file' || kind === 'folder') && typeof name === 'string' ? { kind, name } : undefined

describe('paging', () => {
  it('reads a limit from a query string: 1 to the maximum, the default when absent, null otherwise', () => {
    expect([pageLimitOf(undefined), pageLimitOf('')]).toEqual([DEFAULT_PAGE_SIZE, DEFAULT_PAGE_SIZE])
    expect([pageLimitOf('1'), pageLimitOf('250'), pageLimitOf(String(MAX_PAGE_SIZE))]).toEqual([1, 250, 1000])
    expect(pageLimitOf('007')).toBe(7)
    for (const raw of [
      '0',
      '1001',
      '-1',
      '1.5',
      '1e3',
      '0x10',
      ' 5',
      '5 ',
      '+5',
      'ten',
      '99999999999999999999',
    ]) {
      expect(pageLimitOf(raw), raw).toBeNull()
    }
  })

  it('parses a limit not yet checked at the edge, refusing anything else with the one message', () => {
    expect(parseLimit(undefined)).toBe(DEFAULT_PAGE_SIZE)
    expect(parseLimit('20')).toBe(20)
    expect(parseLimit(20)).toBe(20)
    for (const raw of [0, 1001, 2.5, Number.NaN, '0', 'x', null, true, ['5'], { limit: 5 }]) {
      expect(() => parseLimit(raw), String(raw)).toThrowError(invalidRequest(LIMIT_MESSAGE))
    }
    expect(LIMIT_MESSAGE).toBe('limit must be an integer from 1 to 1000')
  })

  it('hands out URL-safe cursors that decode to the same sort key', () => {
    for (const key of [
      ['file', 'report.txt'],
      ['folder', 'naïve/? +=& 🎉'],
      ['file', ''],
    ]) {
      const cursor = encodeCursor(key)
      expect(cursor).toMatch(/^[A-Za-z0-9_-]+$/)
      expect(decodeCursor(cursor, listingKey)).toEqual({ kind: key[0], name: key[1] })
    }
    expect(decodeCursor(encodeCursor([1_700_000_000_000, 'id']), (key) => key)).toEqual([
      1_700_000_000_000,
      'id',
    ])
  })

  it('answers no position for an absent or empty cursor', () => {
    const never = () => {
      throw new Error('nothing to accept')
    }
    expect(decodeCursor(undefined, never)).toBeUndefined()
    expect(decodeCursor('', never)).toBeUndefined()
  })

  it('refuses, with one answer for all, a cursor this server did not hand out', () => {
    const foreign = [
      'garbage!',
      'bm90IGpzb24',
      encodeCursor(['album', 'x']),
      encodeCursor(['file']),
      Buffer.from('{"kind":"file","name":"x"}').toString('base64url'),
      Buffer.from('"file"').toString('base64url'),
      42,
      {},
    ]
    for (const raw of foreign) {
      expect(() => decodeCursor(raw, listingKey), String(raw)).toThrowError(
        invalidRequest('cursor is not one this server handed out'),
      )
    }
  })
})

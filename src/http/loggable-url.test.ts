import { describe, expect, it } from 'vitest'
import { loggableUrl } from './loggable-url.js'

/** A link token's shape: 43 characters of base64url. */
const TOKEN = 'AbC-123_xyzAbC-123_xyzAbC-123_xyzAbC-123_xy'

describe('loggableUrl', () => {
  it('hides share link tokens and token parameters, and keeps the rest', () => {
    expect(loggableUrl('/api/v1/share/AbC-123_xyz')).toBe('/api/v1/share/***')
    expect(loggableUrl('/api/v1/share/AbC-123_xyz/download?path=a%2Fb')).toBe(
      '/api/v1/share/***/download?path=a%2Fb',
    )
    expect(loggableUrl('/api/v1/sync/ws?cursor=5&token=secret&x=1')).toBe(
      '/api/v1/sync/ws?cursor=5&token=***&x=1',
    )
    expect(loggableUrl('/api/v1/shares/AbC-123_xyz')).toBe('/api/v1/shares/***')
    expect(loggableUrl('/api/v1/files/123/share')).toBe('/api/v1/files/123/share')
    expect(loggableUrl('/api/v1/shares')).toBe('/api/v1/shares')
  })

  it('hides a token however the path is written (percent-escapes, case, //, ;params)', () => {
    // The reviewer's variants (review finding 13a).
    const variants = [
      `/api/v1/%73hare/${TOKEN}`,
      `/api/v1/shar%65/${TOKEN}/download`,
      `/api/v1/share//${TOKEN}`,
      `/api/v1/Share/${TOKEN}`,
      `/api/v1/SHARES/${TOKEN}`,
      `/api/v1/share/${TOKEN};x`,
      `/api/v1/share;v=1/${TOKEN}`,
      `/api/v1/share/${TOKEN.slice(0, 5)}%${TOKEN.charCodeAt(5).toString(16)}${TOKEN.slice(6)}`,
      `/api/v1/%2573hare/${TOKEN}`,
      `/api/v1/anything/${TOKEN}/else`,
      `/api/v1/x?cursor=${TOKEN}`,
    ]
    for (const url of variants) {
      const logged = loggableUrl(url)
      expect(logged, url).toContain('***')
      expect(logged, url).not.toContain(TOKEN)
      expect(logged, url).not.toContain(TOKEN.slice(6))
    }
    expect(loggableUrl(`/api/v1/%73hare/${TOKEN}/download`)).toBe('/api/v1/%73hare/***/download')
  })

  it('keeps ids and content hashes, and never throws on a malformed escape', () => {
    const hash = 'a'.repeat(64)
    expect(loggableUrl(`/api/v1/chunks/${hash}`)).toBe(`/api/v1/chunks/${hash}`)
    expect(loggableUrl('/api/v1/files/0b9d3c1e-8f43-4bb1-9a55-0d1e2f3a4b5c')).toBe(
      '/api/v1/files/0b9d3c1e-8f43-4bb1-9a55-0d1e2f3a4b5c',
    )
    expect(loggableUrl('/api/v1/%E0%A4%A/%ff')).toBe('/api/v1/%E0%A4%A/%ff')
  })
})

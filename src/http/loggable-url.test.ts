import { describe, expect, it } from 'vitest'
import { loggableUrl } from './loggable-url.js'

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
})

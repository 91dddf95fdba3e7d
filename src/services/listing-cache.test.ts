import { describe, expect, it } from 'vitest'
import type { NodeRecord } from '../domain/model.js'
import { ListingCache, type ListingPage } from './listing-cache.js'

const page = (count: number): ListingPage => ({
  items: Array.from({ length: count }, (_, i) => ({ id: `n${i}`, name: `n${i}` }) as NodeRecord),
  nextCursor: null,
})

describe('ListingCache', () => {
  it('answers a page only under the listing version it was cached with', () => {
    const cache = new ListingCache()
    const first = page(3)
    cache.set('f', 1, 'p', first)
    expect(cache.get('f', 1, 'p')).toBe(first)
    expect(cache.get('f', 2, 'p')).toBeUndefined()
    expect(cache.get('f', 1, 'other page')).toBeUndefined()
    expect(cache.get('f', undefined, 'p')).toBeUndefined()
  })

  it('replaces every page of a folder once its version moves on', () => {
    const cache = new ListingCache()
    cache.set('f', 1, 'p1', page(2))
    cache.set('f', 2, 'p2', page(2))
    expect(cache.get('f', 1, 'p1')).toBeUndefined()
    expect(cache.get('f', 2, 'p1')).toBeUndefined()
    expect(cache.get('f', 2, 'p2')?.items).toHaveLength(2)
  })

  it('holds at most maxItems items, dropping the least recently used folders', () => {
    const cache = new ListingCache(10)
    cache.set('a', 1, 'p', page(4))
    cache.set('b', 1, 'p', page(4))
    expect(cache.get('a', 1, 'p')).toBeDefined() // `a` is now the most recently used
    cache.set('c', 1, 'p', page(4))
    expect(cache.get('b', 1, 'p')).toBeUndefined()
    expect(cache.get('a', 1, 'p')).toBeDefined()
    expect(cache.get('c', 1, 'p')).toBeDefined()
    cache.set('huge', 1, 'p', page(11))
    expect(cache.get('huge', 1, 'p')).toBeUndefined()
  })
})

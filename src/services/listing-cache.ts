import type { NodeRecord } from '../domain/model.js'

/** One page of a listing, as handed to clients. Cached pages are shared: never mutate one. */
export interface ListingPage {
  items: readonly NodeRecord[]
  nextCursor: string | null
}

/** Listed items kept in memory at most: about 20 MB of records. */
const DEFAULT_MAX_ITEMS = 50_000

interface FolderEntry {
  version: number
  pages: Map<string, ListingPage>
  items: number
}

/**
 * Pages of folder listings, served while the folder's `listingVersion` (read fresh from the
 * store with the folder on every request) is the one they were cached under. The store bumps
 * that version in the same transaction as any change to the folder's children, so a hit is
 * never stale, on one API node or many, and nothing needs to be invalidated by hand.
 * Least recently used folders are dropped first once `maxItems` items are held.
 */
export class ListingCache {
  readonly #folders = new Map<string, FolderEntry>()
  #items = 0

  constructor(private readonly maxItems = DEFAULT_MAX_ITEMS) {}

  get(folderId: string, version: number | undefined, pageKey: string): ListingPage | undefined {
    const entry = this.#folders.get(folderId)
    if (!entry || version === undefined || entry.version !== version) return undefined
    // Map order is insertion order: moving the entry to the end keeps it as the newest.
    this.#folders.delete(folderId)
    this.#folders.set(folderId, entry)
    return entry.pages.get(pageKey)
  }

  set(folderId: string, version: number | undefined, pageKey: string, page: ListingPage): void {
    const size = page.items.length
    if (version === undefined || size > this.maxItems) return
    let entry = this.#folders.get(folderId)
    if (entry && entry.version !== version) {
      this.#drop(folderId, entry)
      entry = undefined
    }
    if (!entry) {
      entry = { version, pages: new Map(), items: 0 }
      this.#folders.set(folderId, entry)
    }
    const previous = entry.pages.get(pageKey)
    const added = size - (previous?.items.length ?? 0)
    entry.items += added
    this.#items += added
    entry.pages.set(pageKey, page)
    for (const [oldestId, oldest] of this.#folders) {
      if (this.#items <= this.maxItems) break
      this.#drop(oldestId, oldest)
    }
  }

  #drop(folderId: string, entry: FolderEntry): void {
    this.#folders.delete(folderId)
    this.#items -= entry.items
  }
}

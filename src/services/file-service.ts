import type { Clock } from '../domain/clock.js'
import { notFound } from '../domain/errors.js'
import type { NodeKind, NodeRecord, User } from '../domain/model.js'
import { normalizeName } from '../domain/names.js'
import type { MetadataStore } from '../ports/metadata-store.js'
import { assertSameOwner, locate, locateFolderWithPath, locateLocked, locateTarget } from './access.js'
import type { ChangeJournal } from './change-journal.js'
import type { ChunkReader, DownloadPlan } from './chunk-reader.js'
import { ListingCache, type ListingPage } from './listing-cache.js'
import { DEFAULT_PAGE_SIZE, decodeCursor, encodeCursor, type PageRequest } from './paging.js'

export interface FolderListing {
  folder: NodeRecord
  path: string
  /** Where the caller's view begins when the folder is shared with them (else null). */
  shareRootId: string | null
  /** Possibly shared with other requests (cached): read-only. */
  page: ListingPage
}

/** Which folder to list (absent: the caller's root), and which page of it. */
export interface ListingRequest extends PageRequest {
  /** Not an id, or not one the caller can see: 404, as in a path. */
  folderId?: string
}

/** What to change: an absent field stays as it is; `folderId: null` moves to the root. */
export interface FileChanges {
  /** Checked whole by `normalizeName` (INVALID_NAME), so it comes as it was sent. */
  name?: unknown
  folderId?: string | null
}

export class FileService {
  constructor(
    private readonly meta: MetadataStore,
    private readonly journal: ChangeJournal,
    private readonly clock: Clock,
    private readonly reader: ChunkReader,
    private readonly listings = new ListingCache(),
  ) {}

  /** One page of a folder: folders first, then files, each by name; the cursor is opaque. */
  async list(
    user: User,
    { folderId, limit = DEFAULT_PAGE_SIZE, cursor }: ListingRequest,
  ): Promise<FolderListing> {
    const after = decodeCursor(cursor, ([kind, name]) =>
      (kind === 'file' || kind === 'folder') && typeof name === 'string'
        ? { kind: kind as NodeKind, name }
        : undefined,
    )
    // In a query string the folder id names a resource, as in a path: malformed is 404.
    const located = await locateFolderWithPath(this.meta, user, folderId ?? user.rootFolderId, 'read')
    const { node: folder, path, shareRoot } = located
    const pageKey = `${limit}/${after ? `${after.kind}/${after.name}` : ''}`
    let page = this.listings.get(folder.id, folder.listingVersion, pageKey)
    if (!page) {
      const rows = await this.meta.nodes.listLiveChildren(folder.id, { after, limit: limit + 1 })
      const items = rows.slice(0, limit)
      const last = items.at(-1)
      page = { items, nextCursor: rows.length > limit && last ? encodeCursor([last.kind, last.name]) : null }
      this.listings.set(folder.id, folder.listingVersion, pageKey, page)
    }
    return { folder, path, shareRootId: shareRoot?.id ?? null, page }
  }

  async get(user: User, id: string): Promise<NodeRecord> {
    return (await locate(this.meta, user, id, 'read', 'file')).node
  }

  async update(user: User, id: string, input: FileChanges): Promise<NodeRecord> {
    const name = input.name === undefined ? undefined : normalizeName(input.name)
    const moving = input.folderId !== undefined
    return this.journal.transaction(user.id, async (tx, log) => {
      // Under the tree lock, ordered with deletes of the same tree: a file moved into a folder
      // being deleted would otherwise stay live inside it, and a rename racing a delete would
      // journal a stale name.
      const { node: file } = await locateLocked(tx, user, id, 'write', 'file')
      let parentId: string | undefined
      if (moving) {
        const target = await locateTarget(tx, user, input.folderId, 'folderId')
        assertSameOwner(file, target.node)
        parentId = target.node.id
      }
      await tx.nodes.update(file.id, { name, parentId, updatedAt: this.clock() })
      const { node: updated } = await locate(tx, user, id, 'write', 'file')
      if (updated.name !== file.name || updated.parentId !== file.parentId) {
        log.record(updated, 'move', { from: file.parentId })
      }
      return updated
    })
  }

  /** To the trash. Quota still counts it until it is purged. */
  async delete(user: User, id: string): Promise<void> {
    await this.journal.transaction(user.id, async (tx, log) => {
      // Ordered with moves, restores and purges of the same tree (a folder moved in meanwhile
      // would otherwise stay live inside a trashed one).
      const { node: file } = await locateLocked(tx, user, id, 'write', 'file')
      await tx.nodes.trashSubtree(file.id, this.clock())
      log.record(file, 'delete')
    })
  }

  /** What a download of the current version (or of `versionNumber`) needs. */
  async planDownload(user: User, id: string, versionNumber?: number): Promise<DownloadPlan> {
    const { node: file } = await locate(this.meta, user, id, 'read', 'file')
    const wanted = versionNumber ?? file.currentVersion
    const version = wanted === null ? null : await this.meta.versions.find(file.id, wanted)
    if (!version) throw notFound('version not found')
    return this.reader.plan(file, version)
  }
}

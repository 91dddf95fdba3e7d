import type { Clock } from '../domain/clock.js'
import { notFound } from '../domain/errors.js'
import type { ChunkRef, NodeKind, NodeRecord, User, VersionRecord } from '../domain/model.js'
import { normalizeName } from '../domain/names.js'
import type { MetadataStore } from '../ports/metadata-store.js'
import type { ChangeJournal } from './change-journal.js'
import { ListingCache, type ListingPage } from './listing-cache.js'
import { findOwnFolderWithPath, findOwnNode, resolveTargetFolder } from './lookup.js'
import { decodeCursor, encodeCursor, parseLimit } from './paging.js'

export interface FolderListing {
  folder: NodeRecord
  path: string
  /** Possibly shared with other requests (cached): read-only. */
  page: ListingPage
}

export interface DownloadPlan {
  file: NodeRecord
  version: VersionRecord
  /** The chunks that hold bytes [start, end], in order, the first containing `start`. */
  chunks(start: number): Promise<ChunkRef[]>
}

export class FileService {
  constructor(
    private readonly meta: MetadataStore,
    private readonly journal: ChangeJournal,
    private readonly clock: Clock,
    private readonly listings = new ListingCache(),
  ) {}

  /** One page of a folder: folders first, then files, each by name; the cursor is opaque. */
  async list(
    user: User,
    query: { folderId?: unknown; limit?: unknown; cursor?: unknown },
  ): Promise<FolderListing> {
    const limit = parseLimit(query.limit)
    const after = decodeCursor(query.cursor, ([kind, name]) =>
      (kind === 'file' || kind === 'folder') && typeof name === 'string'
        ? { kind: kind as NodeKind, name }
        : undefined,
    )
    const folderId =
      typeof query.folderId === 'string' && query.folderId !== '' ? query.folderId : user.rootFolderId
    // In a query string the folder id names a resource, as in a path: malformed is 404.
    const { node: folder, path } = await findOwnFolderWithPath(this.meta, user, folderId)
    const pageKey = `${limit}/${after ? `${after.kind}/${after.name}` : ''}`
    let page = this.listings.get(folder.id, folder.listingVersion, pageKey)
    if (!page) {
      const rows = await this.meta.nodes.listLiveChildren(folder.id, { after, limit: limit + 1 })
      const items = rows.slice(0, limit)
      const last = items.at(-1)
      page = { items, nextCursor: rows.length > limit && last ? encodeCursor([last.kind, last.name]) : null }
      this.listings.set(folder.id, folder.listingVersion, pageKey, page)
    }
    return { folder, path, page }
  }

  get(user: User, id: string): Promise<NodeRecord> {
    return findOwnNode(this.meta, user, id, 'file')
  }

  async update(user: User, id: string, input: { name?: unknown; folderId?: unknown }): Promise<NodeRecord> {
    const name = input.name === undefined ? undefined : normalizeName(input.name)
    const moving = Object.hasOwn(input, 'folderId')
    return this.journal.transaction(user.id, async (tx, log) => {
      // Ordered with deletes of the same tree: a file moved into a folder being deleted would
      // otherwise stay live inside it, and a rename racing a delete would journal a stale name.
      await tx.users.lockTree(user.id)
      const file = await findOwnNode(tx, user, id, 'file')
      const parentId = moving
        ? (await resolveTargetFolder(tx, user, input.folderId, 'folderId')).id
        : undefined
      await tx.nodes.update(file.id, { name, parentId, updatedAt: this.clock() })
      const updated = await findOwnNode(tx, user, id, 'file')
      if (updated.name !== file.name || updated.parentId !== file.parentId) log.record(updated, 'move')
      return updated
    })
  }

  /** To the trash. Quota still counts it until it is purged. */
  async delete(user: User, id: string): Promise<void> {
    await this.journal.transaction(user.id, async (tx, log) => {
      // Ordered with moves, restores and purges of the same tree (a folder moved in meanwhile
      // would otherwise stay live inside a trashed one).
      await tx.users.lockTree(user.id)
      const file = await findOwnNode(tx, user, id, 'file')
      await tx.nodes.trashSubtree(file.id, this.clock())
      log.record(file, 'delete')
    })
  }

  /** What a download of the current version (or of `versionNumber`) needs. */
  async planDownload(user: User, id: string, versionNumber?: number): Promise<DownloadPlan> {
    const file = await findOwnNode(this.meta, user, id, 'file')
    const wanted = versionNumber ?? file.currentVersion
    const version = wanted === null ? null : await this.meta.versions.find(file.id, wanted)
    if (!version) throw notFound('version not found')
    return { file, version, chunks: (start) => this.meta.versions.chunks(version.id, start) }
  }
}

import { type Kysely, sql } from 'kysely'
import { AppError } from '../../domain/errors.js'
import type { Millis, NodeKind, NodeRecord } from '../../domain/model.js'
import { nameKey } from '../../domain/names.js'
import type {
  ChildrenPage,
  LineageStep,
  NodeRepository,
  TrashEntry,
  TrashPage,
} from '../../ports/metadata/node-repository.js'
import { withSavepoint } from './atomic.js'
import { batches, VALUES_PER_STATEMENT } from './batches.js'
import { toNode, toRow } from './node-rows.js'
import type { Database } from './schema.js'
import { LineageQueries, MAX_DEPTH } from './sql-lineage-queries.js'
import { uniqueViolation } from './unique-violation.js'

const nameTaken = (): AppError =>
  new AppError('NAME_TAKEN', 'An item with this name already exists in the folder')

export class SqlNodeRepository implements NodeRepository {
  constructor(private readonly db: Kysely<Database>) {
    this.#lineage = new LineageQueries(db)
  }

  async insert(node: NodeRecord): Promise<void> {
    // ON CONFLICT on the partial unique index (live siblings) instead of catching the error:
    // PostgreSQL would otherwise abort the caller's transaction. Other clashes still raise.
    const result = await this.db
      .insertInto('nodes')
      .values(toRow(node))
      .onConflict((oc) => oc.columns(['parent_id', 'name_key']).where('deleted_at', 'is', null).doNothing())
      .executeTakeFirst()
    if (Number(result.numInsertedOrUpdatedRows ?? 0) === 0) throw nameTaken()
    if (node.parentId !== null) await this.bumpListing(node.parentId)
  }

  /** Marks a folder's listing as changed: in the caller's transaction, like the change itself. */
  private async bumpListing(folderId: string): Promise<void> {
    await this.db
      .updateTable('nodes')
      .set((eb) => ({ listing_version: eb('listing_version', '+', 1) }))
      .where('id', '=', folderId)
      .execute()
  }

  private async parentOf(id: string): Promise<string | null> {
    const row = await this.db.selectFrom('nodes').select('parent_id').where('id', '=', id).executeTakeFirst()
    return row?.parent_id ?? null
  }

  async findLive(ownerId: string, id: string): Promise<NodeRecord | null> {
    const row = await this.db
      .selectFrom('nodes')
      .selectAll()
      .where('id', '=', id)
      .where('owner_id', '=', ownerId)
      .where('deleted_at', 'is', null)
      .executeTakeFirst()
    return row ? toNode(row) : null
  }

  async findAnyState(id: string): Promise<NodeRecord | null> {
    const row = await this.db.selectFrom('nodes').selectAll().where('id', '=', id).executeTakeFirst()
    return row ? toNode(row) : null
  }

  async findLiveChild(parentId: string, name: string): Promise<NodeRecord | null> {
    const row = await this.db
      .selectFrom('nodes')
      .selectAll()
      .where('parent_id', '=', parentId)
      .where('name_key', '=', nameKey(name))
      .where('deleted_at', 'is', null)
      .executeTakeFirst()
    return row ? toNode(row) : null
  }

  async listLiveChildren(parentId: string, page: ChildrenPage): Promise<NodeRecord[]> {
    // Folders first, then files; each by name in binary order (COLLATE "C" on PostgreSQL).
    // Keyset: one index range scan per kind from `after`, so a page costs the same however
    // deep into a large folder it is (an OR over both kinds would scan every skipped row).
    const { after, limit } = page
    const listed: NodeRecord[] = []
    if (after === undefined || after.kind === 'folder') {
      listed.push(...(await this.liveChildrenOfKind(parentId, 'folder', after?.name, limit)))
    }
    if (listed.length < limit) {
      const afterFile = after?.kind === 'file' ? after.name : undefined
      listed.push(...(await this.liveChildrenOfKind(parentId, 'file', afterFile, limit - listed.length)))
    }
    return listed
  }

  private async liveChildrenOfKind(
    parentId: string,
    kind: NodeKind,
    afterName: string | undefined,
    limit: number,
  ): Promise<NodeRecord[]> {
    if (limit <= 0) return []
    const rows = await this.db
      .selectFrom('nodes')
      .selectAll()
      .where('parent_id', '=', parentId)
      .where('kind', '=', kind)
      .where('deleted_at', 'is', null)
      .$if(afterName !== undefined, (qb) => qb.where('name', '>', afterName!))
      .orderBy('name', 'asc')
      .limit(limit)
      .execute()
    return rows.map(toNode)
  }

  /** The node and its ancestors up to the root, nearest first. */
  lineage(id: string): Promise<NodeRecord[]> {
    return this.#lineage.of(id)
  }

  lineageWithRoles(userId: string, id: string): Promise<LineageStep[]> {
    return this.#lineage.withRoles(userId, id)
  }

  readonly #lineage: LineageQueries

  async update(id: string, patch: { name?: string; parentId?: string; updatedAt: Millis }): Promise<void> {
    const oldParent = await this.parentOf(id)
    try {
      await withSavepoint(this.db, () =>
        this.db
          .updateTable('nodes')
          .set({
            ...(patch.name !== undefined && { name: patch.name, name_key: nameKey(patch.name) }),
            ...(patch.parentId !== undefined && { parent_id: patch.parentId }),
            updated_at: patch.updatedAt,
          })
          .where('id', '=', id)
          .execute(),
      )
    } catch (error) {
      if (uniqueViolation(error) === 'unique') throw nameTaken()
      throw error
    }
    if (oldParent !== null) await this.bumpListing(oldParent)
    if (patch.parentId !== undefined && patch.parentId !== oldParent) await this.bumpListing(patch.parentId)
  }

  async setCurrentVersion(
    id: string,
    current: { version: number; size: number; contentHash: string; updatedAt: Millis },
  ): Promise<void> {
    await this.db
      .updateTable('nodes')
      .set({
        current_version: current.version,
        size: current.size,
        content_hash: current.contentHash,
        updated_at: current.updatedAt,
      })
      .where('id', '=', id)
      .execute()
    const parent = await this.parentOf(id)
    if (parent !== null) await this.bumpListing(parent)
  }

  async trashSubtree(id: string, deletedAt: Millis): Promise<{ nodes: number; fileBytes: number }> {
    // One UPDATE over a recursive CTE of the live subtree. A descendant trashed earlier is
    // not descended into: it stays in the trash under its own trash root.
    const subtree = this.db
      .withRecursive('subtree(id)', (db) =>
        db
          .selectFrom('nodes')
          .select('id')
          .where('id', '=', id)
          .where('deleted_at', 'is', null)
          .unionAll((db) =>
            db
              .selectFrom('nodes')
              .innerJoin('subtree', 'subtree.id', 'nodes.parent_id')
              .select('nodes.id')
              .where('nodes.deleted_at', 'is', null),
          ),
      )
      .selectFrom('subtree')
      .select('subtree.id')
    const parent = await this.parentOf(id)
    const trashed = await this.db
      .updateTable('nodes')
      .set({ deleted_at: deletedAt, trash_root_id: id })
      .where('id', 'in', subtree)
      .returning(['kind', 'size'])
      .execute()
    // Summed here rather than in SQL: PostgreSQL's SUM(bigint) is NUMERIC, which pg hands
    // back as a string, and SQLite cannot aggregate over UPDATE ... RETURNING.
    const fileBytes = trashed.reduce((sum, node) => (node.kind === 'file' ? sum + node.size : sum), 0)
    if (parent !== null && trashed.length > 0) await this.bumpListing(parent)
    return { nodes: trashed.length, fileBytes }
  }

  async findTrashRoot(ownerId: string, id: string): Promise<NodeRecord | null> {
    const row = await this.db
      .selectFrom('nodes')
      .selectAll()
      .where('id', '=', id)
      .where('owner_id', '=', ownerId)
      .where('deleted_at', 'is not', null)
      .whereRef('trash_root_id', '=', 'id')
      .executeTakeFirst()
    return row ? toNode(row) : null
  }

  async listTrash(ownerId: string, page: TrashPage): Promise<TrashEntry[]> {
    const { after, limit } = page
    const rows = await this.db
      .selectFrom('nodes as root')
      .selectAll('root')
      .select((eb) =>
        eb
          .selectFrom('nodes as member')
          .select((inner) => inner.fn.coalesce(inner.fn.sum<number>('member.size'), sql.lit(0)).as('bytes'))
          .whereRef('member.trash_root_id', '=', 'root.id')
          .where('member.kind', '=', 'file')
          .as('bytes'),
      )
      .where('root.owner_id', '=', ownerId)
      .where('root.deleted_at', 'is not', null)
      .whereRef('root.trash_root_id', '=', 'root.id')
      .$if(after !== undefined, (qb) =>
        qb.where((eb) =>
          eb.or([
            eb('root.deleted_at', '<', after!.deletedAt),
            eb.and([eb('root.deleted_at', '=', after!.deletedAt), eb('root.id', '<', after!.id)]),
          ]),
        ),
      )
      .orderBy('root.deleted_at', 'desc')
      .orderBy('root.id', 'desc')
      .limit(limit)
      .execute()
    // SUM over BIGINT is NUMERIC on PostgreSQL, which pg hands over as a string.
    return rows.map(({ bytes, ...row }) => ({ node: toNode(row), bytes: Number(bytes ?? 0) }))
  }

  async trashDeletedBefore(cutoff: Millis, limit: number): Promise<NodeRecord[]> {
    const rows = await this.db
      .selectFrom('nodes')
      .selectAll()
      .where('deleted_at', '<=', cutoff)
      .whereRef('trash_root_id', '=', 'id')
      .orderBy('deleted_at')
      .limit(limit)
      .execute()
    return rows.map(toNode)
  }

  async restoreTrash(
    rootId: string,
    placement: { parentId: string; name: string; updatedAt: Millis },
  ): Promise<void> {
    const oldParent = await this.parentOf(rootId)
    // The root is placed while it is still in the trash (the unique index holds only live
    // nodes), then its whole tree comes back; only the root can clash with a live sibling,
    // since everything below it was live together when it was deleted.
    await this.db
      .updateTable('nodes')
      .set({
        parent_id: placement.parentId,
        name: placement.name,
        name_key: nameKey(placement.name),
        updated_at: placement.updatedAt,
      })
      .where('id', '=', rootId)
      .execute()
    try {
      await withSavepoint(this.db, () =>
        this.db
          .updateTable('nodes')
          .set({ deleted_at: null, trash_root_id: null })
          .where('trash_root_id', '=', rootId)
          .execute(),
      )
    } catch (error) {
      if (uniqueViolation(error) === 'unique') throw nameTaken()
      throw error
    }
    await this.bumpListing(placement.parentId)
    if (oldParent !== null && oldParent !== placement.parentId) await this.bumpListing(oldParent)
  }

  async subtree(id: string): Promise<NodeRecord[]> {
    const rows = await this.db
      .withRecursive('subtree(id, depth)', (db) =>
        db
          .selectFrom('nodes')
          .select(['id', sql.lit(0).as('depth')])
          .where('id', '=', id)
          .unionAll((db) =>
            db
              .selectFrom('nodes')
              .innerJoin('subtree', 'subtree.id', 'nodes.parent_id')
              .select(['nodes.id', sql<number>`subtree.depth + 1`.as('depth')])
              .where('subtree.depth', '<', MAX_DEPTH),
          ),
      )
      .selectFrom('subtree')
      .innerJoin('nodes', 'nodes.id', 'subtree.id')
      .selectAll('nodes')
      .orderBy('subtree.depth', 'desc')
      .execute()
    return rows.map(toNode)
  }

  async deleteMany(ids: readonly string[]): Promise<void> {
    // One statement per batch; callers pass whole subtrees deepest first, so that a batch
    // never removes a folder before the children that point at it.
    for (const batch of batches(ids, VALUES_PER_STATEMENT)) {
      await this.db.deleteFrom('nodes').where('id', 'in', batch).execute()
    }
  }
}

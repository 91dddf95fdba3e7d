import { type CompiledQuery, type Kysely, type NotNull, type Selectable, sql } from 'kysely'
import type { MemberRole, NodeRecord } from '../../domain/model.js'
import type { LineageStep } from '../../ports/metadata/node-repository.js'
import { toNode } from './node-rows.js'
import type { Database, NodesTable } from './schema.js'

/**
 * Deeper than any real tree. Moves are checked against cycles by the services; this bound
 * only keeps a corrupted parent chain from making a recursive query run forever.
 */
export const MAX_DEPTH = 10_000
/** Stands for the id in the compiled lineage query; replaced by the real one at each call. */
const LINEAGE_PLACEHOLDER = '\u0000lineage-id'
/** Stands for the user in the compiled lineage-with-roles query. */
const MEMBER_PLACEHOLDER = '\u0000lineage-member'

/**
 * A node's chain of ancestors, by one recursive query: what every access check and listing
 * reads first. Each query is built and compiled once per store and only its parameters change.
 */
export class LineageQueries {
  constructor(private readonly db: Kysely<Database>) {}

  async of(id: string): Promise<NodeRecord[]> {
    // Every listing and folder lookup runs this: it is built and compiled once, and only
    // the id changes (building a recursive query costs more than SQLite takes to run it).
    this.#lineageQuery ??= this.#build(LINEAGE_PLACEHOLDER).compile()
    const template = this.#lineageQuery
    const parameters = template.parameters.map((value) => (value === LINEAGE_PLACEHOLDER ? id : value))
    const { rows } = await this.db.executeQuery<Selectable<NodesTable>>({ ...template, parameters })
    return rows.map(toNode)
  }

  #lineageQuery: CompiledQuery<Selectable<NodesTable>> | undefined

  async withRoles(userId: string, id: string): Promise<LineageStep[]> {
    // Every request of an upload session (each chunk PUT) runs this: compiled once, like lineage.
    this.#rolesQuery ??= this.#build(LINEAGE_PLACEHOLDER)
      .leftJoin('folder_members', (join) =>
        join
          .onRef('folder_members.folder_id', '=', 'nodes.id')
          .on('folder_members.user_id', '=', MEMBER_PLACEHOLDER),
      )
      .select('folder_members.role as member_role')
      .compile()
    const template = this.#rolesQuery
    const parameters = template.parameters.map((value) =>
      value === LINEAGE_PLACEHOLDER ? id : value === MEMBER_PLACEHOLDER ? userId : value,
    )
    const { rows } = await this.db.executeQuery<Selectable<NodesTable> & { member_role: MemberRole | null }>({
      ...template,
      parameters,
    })
    return rows.map(({ member_role, ...row }) => ({ node: toNode(row), memberRole: member_role }))
  }

  #rolesQuery: CompiledQuery<Selectable<NodesTable> & { member_role: MemberRole | null }> | undefined

  #build(id: string) {
    return this.db
      .withRecursive('lineage(id, depth)', (db) =>
        db
          .selectFrom('nodes')
          .select(['id', sql.lit(0).as('depth')])
          .where('id', '=', id)
          .unionAll((db) =>
            db
              .selectFrom('nodes')
              .innerJoin('lineage', 'lineage.id', 'nodes.id')
              .select(['nodes.parent_id as id', sql<number>`lineage.depth + 1`.as('depth')])
              .where('nodes.parent_id', 'is not', null)
              .where('lineage.depth', '<', MAX_DEPTH)
              .$narrowType<{ id: NotNull }>(),
          ),
      )
      .selectFrom('lineage')
      .innerJoin('nodes', 'nodes.id', 'lineage.id')
      .selectAll('nodes')
      .orderBy('lineage.depth', 'asc')
  }
}

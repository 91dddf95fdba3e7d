import type { Clock } from '../domain/clock.js'
import { type ChangeAction, changeOf, type JournalEntry } from '../domain/journal.js'
import type { NodeRecord } from '../domain/model.js'
import type { JournalItem } from '../ports/metadata/journal-repository.js'
import type { MetadataStore, Repositories } from '../ports/metadata-store.js'

/** What a use case tells the journal inside its transaction. */
export interface ChangeLog {
  /**
   * `node`, as it is after the change, went through `action`, for everyone who can see it. A
   * move says where it came `from`: whoever could see it there but not here is told `delete`,
   * whoever can see it here but not there `create`.
   */
  record(node: NodeRecord, action: ChangeAction, move?: { from: string | null }): void
  /** A change for one user's journal only: a folder shared with them, or no longer. */
  recordFor(userId: string, node: NodeRecord, action: ChangeAction): void
}

/** Told of entries once the transaction that wrote them has committed. */
export type CommittedChanges = (entries: readonly JournalEntry[]) => void

type Recorded =
  | { to: 'audience'; node: NodeRecord; action: ChangeAction; from?: string | null }
  | { to: 'user'; userId: string; node: NodeRecord; action: ChangeAction }

/**
 * The one way the use cases change the tree: a transaction whose changes are appended to the
 * journal of everyone who can see them (the owner, and the members of every shared folder
 * above) before it commits, so a change and its entries exist together or not at all; and
 * announced only after it has committed, so no client is told of a change it cannot read yet.
 */
export class ChangeJournal {
  /** Root folder ids by user: they never change, and every owner's entry needs one. */
  readonly #roots = new Map<string, string>()

  constructor(
    private readonly meta: MetadataStore,
    private readonly clock: Clock,
    private readonly committed: CommittedChanges,
  ) {}

  async transaction<T>(actorId: string, work: (tx: Repositories, log: ChangeLog) => Promise<T>): Promise<T> {
    let entries: JournalEntry[] = []
    const result = await this.meta.transaction(async (tx) => {
      const recorded: Recorded[] = []
      const value = await work(tx, {
        record: (node, action, move) => recorded.push({ to: 'audience', node, action, from: move?.from }),
        recordFor: (userId, node, action) => recorded.push({ to: 'user', userId, node, action }),
      })
      // Last, so the journal heads are held as briefly as possible (see JournalRepository).
      if (recorded.length > 0) entries = await tx.journal.append(await this.#items(tx, recorded, actorId))
      return value
    })
    if (entries.length > 0) this.committed(entries)
    return result
  }

  async #items(tx: Repositories, recorded: readonly Recorded[], actorId: string): Promise<JournalItem[]> {
    const at = this.clock()
    const items: JournalItem[] = []
    const push = (userId: string, node: NodeRecord, action: ChangeAction, rootId: string) =>
      items.push({ userId, change: changeOf(node, action, { actorId, rootId, at }) })
    for (const entry of recorded) {
      const { node, action } = entry
      if (entry.to === 'user') {
        // Shown at the top of their view, as /shared-with-me lists it.
        push(entry.userId, node, action, node.parentId ?? '')
        continue
      }
      const now = await this.#viewers(tx, node.ownerId, await tx.nodes.lineage(node.id))
      if (entry.from === undefined) {
        for (const [userId, rootId] of now) push(userId, node, action, rootId)
        continue
      }
      const oldLineage = entry.from === null ? [] : await tx.nodes.lineage(entry.from)
      const before = await this.#viewers(tx, node.ownerId, [node, ...oldLineage])
      for (const [userId, rootId] of now) push(userId, node, before.has(userId) ? action : 'create', rootId)
      for (const [userId, rootId] of before) if (!now.has(userId)) push(userId, node, 'delete', rootId)
    }
    return items
  }

  /**
   * Who sees a node with this lineage (nearest first), each with the folder their view starts
   * in: the owner from their root; a member from above the topmost folder shared with them.
   */
  async #viewers(
    tx: Repositories,
    ownerId: string,
    lineage: readonly NodeRecord[],
  ): Promise<Map<string, string>> {
    const viewers = new Map<string, string>([[ownerId, await this.#rootOf(tx, ownerId)]])
    const members = await tx.sharing.membersOfAny(lineage.map((ancestor) => ancestor.id))
    if (members.length === 0) return viewers
    const depth = new Map(lineage.map((ancestor, index) => [ancestor.id, index]))
    const topmost = new Map<string, { depth: number; parentId: string }>()
    for (const member of members) {
      const at = depth.get(member.folderId) ?? -1
      const folder = lineage[at]
      if (!folder || (topmost.get(member.userId)?.depth ?? -1) >= at) continue
      topmost.set(member.userId, { depth: at, parentId: folder.parentId ?? '' })
    }
    for (const [userId, { parentId }] of topmost) if (userId !== ownerId) viewers.set(userId, parentId)
    return viewers
  }

  async #rootOf(tx: Repositories, userId: string): Promise<string> {
    let root = this.#roots.get(userId)
    if (root === undefined) {
      const user = await tx.users.findById(userId)
      if (!user) throw new Error(`journal: user ${userId} does not exist`)
      root = user.rootFolderId
      this.#roots.set(userId, root)
    }
    return root
  }
}

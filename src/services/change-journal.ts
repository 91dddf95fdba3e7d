import type { Clock } from '../domain/clock.js'
import { type ChangeAction, changeOf, type JournalEntry } from '../domain/journal.js'
import type { NodeRecord } from '../domain/model.js'
import type { JournalItem, MetadataStore, Repositories } from '../ports/metadata-store.js'

/** What a use case tells the journal inside its transaction. */
export interface ChangeLog {
  /** `node`, as it is after the change, went through `action`. */
  record(node: NodeRecord, action: ChangeAction): void
}

/** Told of entries once the transaction that wrote them has committed. */
export type CommittedChanges = (entries: readonly JournalEntry[]) => void

/**
 * The one way the use cases change the tree: a transaction whose changes are appended to the
 * journal of everyone who can see them before it commits (so a change and its entry exist
 * together or not at all), and announced only after it has committed (so no client is ever
 * told of a change it cannot read yet).
 */
export class ChangeJournal {
  /** Root folder ids by user: they never change, and every entry's `folderId` needs one. */
  readonly #roots = new Map<string, string>()

  constructor(
    private readonly meta: MetadataStore,
    private readonly clock: Clock,
    private readonly committed: CommittedChanges,
  ) {}

  async transaction<T>(actorId: string, work: (tx: Repositories, log: ChangeLog) => Promise<T>): Promise<T> {
    let entries: JournalEntry[] = []
    const result = await this.meta.transaction(async (tx) => {
      const recorded: { node: NodeRecord; action: ChangeAction }[] = []
      const value = await work(tx, { record: (node, action) => recorded.push({ node, action }) })
      // Last, so the journal heads are held as briefly as possible (see JournalRepository).
      if (recorded.length > 0) entries = await tx.journal.append(await this.#items(tx, recorded, actorId))
      return value
    })
    if (entries.length > 0) this.committed(entries)
    return result
  }

  async #items(
    tx: Repositories,
    recorded: readonly { node: NodeRecord; action: ChangeAction }[],
    actorId: string,
  ): Promise<JournalItem[]> {
    const at = this.clock()
    const items: JournalItem[] = []
    for (const { node, action } of recorded) {
      for (const userId of this.#audience(node)) {
        const rootId = await this.#rootOf(tx, userId)
        items.push({ userId, change: changeOf(node, action, { actorId, rootId, at }) })
      }
    }
    return items
  }

  /** Who can see the node: its owner. */
  #audience(node: NodeRecord): string[] {
    return [node.ownerId]
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

import type { Kysely, Selectable } from 'kysely'
import type { JournalEntry } from '../../domain/journal.js'
import type { Millis } from '../../domain/model.js'
import type { JournalItem, JournalRepository } from '../../ports/metadata/journal-repository.js'
import { batches, ROWS_PER_INSERT } from './batches.js'
import type { ChangesTable, Database } from './schema.js'

export class SqlJournalRepository implements JournalRepository {
  constructor(private readonly db: Kysely<Database>) {}

  async append(items: readonly JournalItem[]): Promise<JournalEntry[]> {
    const byUser = new Map<string, JournalItem[]>()
    for (const item of items) {
      const list = byUser.get(item.userId)
      if (list) list.push(item)
      else byUser.set(item.userId, [item])
    }
    const entries: JournalEntry[] = []
    // Id order: two transactions fanning out to the same users take their heads in one order.
    for (const userId of [...byUser.keys()].sort()) {
      const own = byUser.get(userId) as JournalItem[]
      const { head } = await this.db
        .insertInto('journal_heads')
        .values({ user_id: userId, head: own.length, floor: 0 })
        .onConflict((oc) =>
          oc
            .column('user_id')
            .doUpdateSet((eb) => ({ head: eb('journal_heads.head', '+', eb.ref('excluded.head')) })),
        )
        .returning('head')
        .executeTakeFirstOrThrow()
      const first = Number(head) - own.length + 1
      own.forEach((item, i) => {
        entries.push({ ...item.change, userId, seq: first + i })
      })
    }
    for (const batch of batches(entries, ROWS_PER_INSERT)) {
      await this.db.insertInto('changes').values(batch.map(toRow)).execute()
    }
    return entries
  }

  async after(userId: string, after: number, limit: number): Promise<JournalEntry[]> {
    const rows = await this.db
      .selectFrom('changes')
      .selectAll()
      .where('user_id', '=', userId)
      .where('seq', '>', after)
      .orderBy('seq')
      .limit(limit)
      .execute()
    return rows.map(toEntry)
  }

  async bounds(userId: string): Promise<{ head: number; floor: number }> {
    const row = await this.db
      .selectFrom('journal_heads')
      .select(['head', 'floor'])
      .where('user_id', '=', userId)
      .executeTakeFirst()
    return { head: Number(row?.head ?? 0), floor: Number(row?.floor ?? 0) }
  }

  async compact(
    before: Millis,
    maxEntries: number,
    userLimit: number,
  ): Promise<{ removed: number; more: boolean }> {
    const byAge = await this.db
      .selectFrom('changes')
      .select((eb) => ['user_id', eb.fn.max('seq').as('upto')])
      .where('at', '<', before)
      .groupBy('user_id')
      .limit(userLimit)
      .execute()
    const byCount = await this.db
      .selectFrom('journal_heads')
      .select((eb) => ['user_id', eb('head', '-', maxEntries).as('upto')])
      .where((eb) => eb(eb('head', '-', eb.ref('floor')), '>', maxEntries))
      .limit(userLimit)
      .execute()
    const upto = new Map<string, number>()
    for (const row of [...byAge, ...byCount]) {
      upto.set(row.user_id, Math.max(upto.get(row.user_id) ?? 0, Number(row.upto)))
    }
    let removed = 0
    for (const [userId, seq] of upto) {
      // The floor rises first, the entries go after: a reader checks the floor after reading
      // entries, so it can never take a page with entries missing for a complete one. A crash
      // in between leaves entries at or below the floor, which the next run removes.
      await this.db
        .updateTable('journal_heads')
        .set({ floor: seq })
        .where('user_id', '=', userId)
        .where('floor', '<', seq)
        .execute()
      const result = await this.db
        .deleteFrom('changes')
        .where('user_id', '=', userId)
        .where('seq', '<=', seq)
        .executeTakeFirst()
      removed += Number(result.numDeletedRows)
    }
    return { removed, more: byAge.length === userLimit || byCount.length === userLimit }
  }
}

function toRow(entry: JournalEntry): ChangesTable {
  return {
    user_id: entry.userId,
    seq: entry.seq,
    action: entry.action,
    kind: entry.kind,
    node_id: entry.nodeId,
    name: entry.name,
    parent_id: entry.parentId,
    version: entry.version,
    size: entry.size,
    content_hash: entry.contentHash,
    actor_id: entry.actorId,
    at: entry.at,
  }
}

function toEntry(row: Selectable<ChangesTable>): JournalEntry {
  return {
    userId: row.user_id,
    seq: Number(row.seq),
    action: row.action,
    kind: row.kind,
    nodeId: row.node_id,
    name: row.name,
    parentId: row.parent_id,
    version: row.version,
    size: Number(row.size),
    contentHash: row.content_hash,
    actorId: row.actor_id,
    at: Number(row.at),
  }
}

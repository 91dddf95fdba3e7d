import { type Kysely, type Migration, sql } from 'kysely'

interface NodeNameRow {
  id: string
  parent_id: string | null
  name: string
  deleted_at: number | null
}

/**
 * Sibling names become unique case-insensitively (domain/names.ts `nameKey` says why):
 * `nodes.name_key` holds the key, computed in JavaScript so that both databases fold exactly
 * alike, and the unique index of live siblings moves from `name` to it.
 *
 * Live siblings that collide under the new rule (created when it did not exist) are resolved
 * deterministically: the oldest keeps its name, the others become `name (case conflict).ext`.
 * Nothing is deleted or overwritten.
 */
export const caseInsensitiveNamesMigration: Migration = {
  async up(db: Kysely<unknown>) {
    await db.schema.alterTable('nodes').addColumn('name_key', 'text').execute()
    // Dropped before the renames, not after: a rename to `A (case conflict)` beside a sibling
    // already named so (renamed in its turn further on) would break the old exact-name index
    // mid-way. The new index, created at the end, checks the final names. (Fixed after release:
    // the old order failed on such data, so no database migrated by it can differ.)
    await db.schema.dropIndex('nodes_live_name_key').execute()
    const rows = await sql<NodeNameRow>`
      select id, parent_id, name, deleted_at from nodes order by parent_id, created_at, id`.execute(db)
    const takenByParent = new Map<string, Set<string>>()
    for (const row of rows.rows) {
      let name = row.name
      if (row.deleted_at === null && row.parent_id !== null) {
        let taken = takenByParent.get(row.parent_id)
        if (!taken) {
          taken = new Set()
          takenByParent.set(row.parent_id, taken)
        }
        for (let attempt = 1; taken.has(nameKey(name)); attempt++) name = caseConflictName(row.name, attempt)
        taken.add(nameKey(name))
      }
      await sql`update nodes set name = ${name}, name_key = ${nameKey(name)} where id = ${row.id}`.execute(db)
    }
    await db.schema
      .createIndex('nodes_live_name_key_ci')
      .on('nodes')
      .columns(['parent_id', 'name_key'])
      .unique()
      .where(sql.ref('deleted_at'), 'is', null)
      .execute()
  },
  async down(db: Kysely<unknown>) {
    await db.schema.dropIndex('nodes_live_name_key_ci').execute()
    await db.schema
      .createIndex('nodes_live_name_key')
      .on('nodes')
      .columns(['parent_id', 'name'])
      .unique()
      .where(sql.ref('deleted_at'), 'is', null)
      .execute()
    await db.schema.alterTable('nodes').dropColumn('name_key').execute()
  },
}

/*
 * Frozen copies of what this migration used from the domain code when it was released
 * (domain/names.ts `nameKey`, domain/conflicted-name.ts `caseConflictName`). A released
 * migration must do tomorrow exactly what it did then, on a database upgraded from an old
 * version, whatever those functions become: never import live code here.
 */

/** The key under which two sibling names are the same name: lower case of NFC. */
function nameKey(name: string): string {
  return name.normalize('NFC').toLowerCase()
}

const MAX_NAME_BYTES = 255

/** `Readme (case conflict).txt`, then ` 2`, ` 3`... inside the brackets. */
function caseConflictName(name: string, attempt = 1): string {
  return markedName(name, attempt > 1 ? `case conflict ${attempt}` : 'case conflict')
}

/** `stem (marker).ext`. The stem is shortened (never the extension) to stay within 255 bytes. */
function markedName(name: string, marker: string): string {
  const dot = name.lastIndexOf('.')
  const hasExtension = dot > 0 && dot < name.length - 1
  const stem = hasExtension ? name.slice(0, dot) : name
  const extension = hasExtension ? name.slice(dot) : ''
  const suffix = ` (${marker})`
  const budget = MAX_NAME_BYTES - Buffer.byteLength(suffix + extension, 'utf8')
  return truncateToBytes(stem, Math.max(1, budget)) + suffix + extension
}

function truncateToBytes(text: string, maxBytes: number): string {
  if (Buffer.byteLength(text, 'utf8') <= maxBytes) return text
  let result = ''
  for (const char of text) {
    if (Buffer.byteLength(result + char, 'utf8') > maxBytes) break
    result += char
  }
  return result
}

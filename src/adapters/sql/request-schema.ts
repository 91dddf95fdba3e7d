import { type Kysely, sql } from 'kysely'
import type { Database } from './schema.js'

/**
 * Every table requests use, with every column, as the schema type declares them: the mapped
 * type makes the compiler refuse a table or column of `Database` left out here, so a migration
 * that adds one (and the schema type with it) cannot be forgotten by readiness.
 */
type EveryColumn = { [Table in keyof Database]: { [Column in keyof Database[Table]]-?: true } }

const REQUEST_SCHEMA: EveryColumn = {
  users: {
    id: true,
    email: true,
    password_hash: true,
    quota_bytes: true,
    used_bytes: true,
    root_folder_id: true,
    created_at: true,
  },
  auth_sessions: { token_hash: true, user_id: true, created_at: true, expires_at: true },
  nodes: {
    id: true,
    owner_id: true,
    parent_id: true,
    kind: true,
    name: true,
    name_key: true,
    size: true,
    current_version: true,
    content_hash: true,
    created_at: true,
    updated_at: true,
    deleted_at: true,
    trash_root_id: true,
    listing_version: true,
    history_due_at: true,
  },
  versions: {
    id: true,
    node_id: true,
    version: true,
    size: true,
    content_hash: true,
    author_id: true,
    created_at: true,
  },
  version_chunks: { version_id: true, idx: true, chunk_hash: true, size: true, byte_offset: true },
  chunks: {
    hash: true,
    size: true,
    ref_count: true,
    created_at: true,
    state: true,
    marked_at: true,
    verified_at: true,
    generation: true,
    damaged_at: true,
    never_referenced: true,
  },
  uploads: {
    id: true,
    user_id: true,
    folder_id: true,
    filename: true,
    size: true,
    chunk_size: true,
    total_chunks: true,
    base_version: true,
    proof_nonce: true,
    created_at: true,
    expires_at: true,
    completed_at: true,
    file_id: true,
    file_version: true,
    content_hash: true,
    conflict: true,
    owner_id: true,
    reserved_bytes: true,
    credit_file_id: true,
  },
  upload_chunks: {
    upload_id: true,
    idx: true,
    chunk_hash: true,
    size: true,
    byte_offset: true,
    state: true,
    proof_digest: true,
  },
  journal_heads: { user_id: true, head: true, floor: true },
  changes: {
    user_id: true,
    seq: true,
    action: true,
    kind: true,
    node_id: true,
    name: true,
    parent_id: true,
    version: true,
    size: true,
    content_hash: true,
    actor_id: true,
    at: true,
  },
  folder_members: { folder_id: true, user_id: true, role: true, added_by: true, created_at: true },
  share_links: {
    id: true,
    token: true,
    token_hash: true,
    owner_id: true,
    node_id: true,
    password_hash: true,
    expires_at: true,
    created_at: true,
    revoked_at: true,
    downloads: true,
    failed_attempts: true,
    attempts_since: true,
  },
  share_link_attempts: { link_id: true, address: true, window_start: true, attempts: true },
  settings: { name: true, value: true },
  leases: { name: true, holder: true, expires_at: true },
}

/** The tables requests use, each with its columns. */
export const REQUEST_TABLES: ReadonlyArray<{ table: string; columns: string[] }> = Object.entries(
  REQUEST_SCHEMA,
).map(([table, columns]) => ({ table, columns: Object.keys(columns) }))

/**
 * Fails unless every table and column requests use is there, in one round trip that reads no
 * row: each table's columns selected from it `where 1 = 0` (the planner reads nothing), cross
 * joined. A table or column renamed or dropped fails it with the database's own message.
 */
export async function checkRequestSchema(db: Kysely<Database>): Promise<void> {
  const probes = REQUEST_TABLES.map(({ table, columns }, i) => {
    const selected = sql.join(columns.map((column) => sql.ref(column)))
    return sql`(select ${selected} from ${sql.table(table)} where 1 = 0) as ${sql.id(`t${i}`)}`
  })
  await sql`select 1 from ${sql.join(probes)}`.execute(db)
}

import type { Kysely, Selectable } from 'kysely'
import { AppError } from '../../domain/errors.js'
import type { User } from '../../domain/model.js'
import type { UsedBytesOptions, UserRepository } from '../../ports/metadata/user-repository.js'
import type { SqlDialect } from './dialect.js'
import type { Database, UsersTable } from './schema.js'

export class SqlUserRepository implements UserRepository {
  constructor(
    private readonly db: Kysely<Database>,
    private readonly dialect: SqlDialect,
  ) {}

  async insert(user: User): Promise<void> {
    // ON CONFLICT instead of catching the error: PostgreSQL would otherwise abort the
    // caller's transaction. A clash on the primary key still raises.
    const result = await this.db
      .insertInto('users')
      .values({
        id: user.id,
        email: user.email,
        password_hash: user.passwordHash,
        quota_bytes: user.quotaBytes,
        used_bytes: user.usedBytes,
        root_folder_id: user.rootFolderId,
        created_at: user.createdAt,
      })
      .onConflict((oc) => oc.column('email').doNothing())
      .executeTakeFirst()
    if (Number(result.numInsertedOrUpdatedRows ?? 0) === 0) {
      throw new AppError('EMAIL_TAKEN', 'An account with this email already exists')
    }
  }

  async findById(id: string): Promise<User | null> {
    const row = await this.db.selectFrom('users').selectAll().where('id', '=', id).executeTakeFirst()
    return row ? toUser(row) : null
  }

  async findByEmail(email: string): Promise<User | null> {
    const row = await this.db.selectFrom('users').selectAll().where('email', '=', email).executeTakeFirst()
    return row ? toUser(row) : null
  }

  async addUsedBytes(userId: string, delta: number, options: UsedBytesOptions = {}): Promise<boolean> {
    // One conditional UPDATE: the row lock (PostgreSQL) or the single writer (SQLite) makes
    // a second concurrent caller re-check the condition against the first one's result.
    const result = await this.db
      .updateTable('users')
      .set((eb) => ({ used_bytes: eb('used_bytes', '+', delta) }))
      .where('id', '=', userId)
      .$if(options.withinQuota === true, (qb) =>
        qb.where((eb) => eb(eb('used_bytes', '+', delta), '<=', eb.ref('quota_bytes'))),
      )
      .executeTakeFirst()
    return Number(result.numUpdatedRows) > 0
  }

  async lockTree(userId: string): Promise<void> {
    // SQLite: every transaction begins IMMEDIATE on the one connection, so writers are
    // serialised already and there is no row lock to take.
    if (this.dialect === 'sqlite') return
    await this.db.selectFrom('users').select('id').where('id', '=', userId).forUpdate().execute()
  }
}

export function toUser(row: Selectable<UsersTable>): User {
  return {
    id: row.id,
    email: row.email,
    passwordHash: row.password_hash,
    quotaBytes: row.quota_bytes,
    usedBytes: row.used_bytes,
    rootFolderId: row.root_folder_id,
    createdAt: row.created_at,
  }
}

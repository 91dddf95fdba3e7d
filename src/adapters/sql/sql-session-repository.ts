import type { Kysely } from 'kysely'
import type { AuthSession, Millis, User } from '../../domain/model.js'
import type { SessionRepository } from '../../ports/metadata/session-repository.js'
import type { Database } from './schema.js'
import { toUser } from './sql-user-repository.js'

export class SqlSessionRepository implements SessionRepository {
  constructor(private readonly db: Kysely<Database>) {}

  async insert(session: AuthSession): Promise<void> {
    await this.db
      .insertInto('auth_sessions')
      .values({
        token_hash: session.tokenHash,
        user_id: session.userId,
        created_at: session.createdAt,
        expires_at: session.expiresAt,
      })
      .execute()
  }

  async findUser(tokenHash: string, now: Millis): Promise<{ user: User; expiresAt: Millis } | null> {
    const row = await this.db
      .selectFrom('auth_sessions')
      .innerJoin('users', 'users.id', 'auth_sessions.user_id')
      .selectAll('users')
      .select('auth_sessions.expires_at')
      .where('auth_sessions.token_hash', '=', tokenHash)
      .where('auth_sessions.expires_at', '>', now)
      .executeTakeFirst()
    return row ? { user: toUser(row), expiresAt: row.expires_at } : null
  }

  async delete(tokenHash: string): Promise<void> {
    await this.db.deleteFrom('auth_sessions').where('token_hash', '=', tokenHash).execute()
  }

  async deleteExpired(now: Millis): Promise<number> {
    const result = await this.db.deleteFrom('auth_sessions').where('expires_at', '<=', now).executeTakeFirst()
    return Number(result.numDeletedRows)
  }
}

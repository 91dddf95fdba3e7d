import type { AuthSession, Millis, User } from '../../domain/model.js'

export interface SessionRepository {
  insert(session: AuthSession): Promise<void>
  /** The user of a session that is known and unexpired at `now`, in one round trip; else null. */
  findUser(tokenHash: string, now: Millis): Promise<{ user: User; expiresAt: Millis } | null>
  delete(tokenHash: string): Promise<void>
  /** Removes sessions expired at `now`; answers how many. */
  deleteExpired(now: Millis): Promise<number>
}

import type { AuthSession, Millis, User } from '../../domain/model.js'

export interface SessionRepository {
  insert(session: AuthSession): Promise<void>
  /** Null when unknown or expired at `now`. */
  find(tokenHash: string, now: Millis): Promise<AuthSession | null>
  /** The user of a session that is known and unexpired at `now`, in one round trip; else null. */
  findUser(tokenHash: string, now: Millis): Promise<{ user: User; expiresAt: Millis } | null>
  delete(tokenHash: string): Promise<void>
  /** Removes sessions expired at `now`; answers how many. */
  deleteExpired(now: Millis): Promise<number>
}

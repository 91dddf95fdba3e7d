import type { User } from '../../domain/model.js'

export interface UserRepository {
  /** Throws AppError EMAIL_TAKEN when the (normalised) email exists. */
  insert(user: User): Promise<void>
  findById(id: string): Promise<User | null>
  findByEmail(email: string): Promise<User | null>
  /**
   * Adds `delta` (may be negative) to usedBytes; answers false when there is no such user.
   * With `withinQuota`, only when the result stays within quotaBytes: answers false (and
   * changes nothing) when it would not. A single conditional UPDATE, so concurrent uploads
   * cannot overrun the quota together.
   */
  addUsedBytes(userId: string, delta: number, options?: UsedBytesOptions): Promise<boolean>
  /**
   * Takes a lock that serialises structural changes (moves) of one user's tree for the rest
   * of the transaction (PostgreSQL: SELECT ... FOR UPDATE on the user row; SQLite writers
   * are serialised already). Only meaningful inside `transaction`.
   */
  lockTree(userId: string): Promise<void>
}

export interface UsedBytesOptions {
  /** Refuse the change when it would take usedBytes past quotaBytes (a growth); default false. */
  withinQuota?: boolean
}

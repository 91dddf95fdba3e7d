import { createHash, randomBytes } from 'node:crypto'
import type { Clock } from '../domain/clock.js'
import { AppError, invalid } from '../domain/errors.js'
import { hasHiddenCharacter } from '../domain/hidden-characters.js'
import { newId } from '../domain/ids.js'
import type { Millis, User } from '../domain/model.js'
import { newFolder } from '../domain/nodes.js'
import type { MetadataStore } from '../ports/metadata-store.js'
import type { PasswordHasher } from './password-hasher.js'

/** 256 bits: far beyond the contract's 128, and guessing is hopeless at any request rate. */
const TOKEN_BYTES = 32
const MIN_PASSWORD_LENGTH = 8
/** argon2 hashes whatever it is given; an unbounded password is a cheap CPU attack. */
const MAX_PASSWORD_LENGTH = 1024
const EMAIL = /^[^\s@]+@[^\s@]+$/
const MAX_EMAIL_LENGTH = 254

/** Bound on the session cache; cleared whole when reached (at most a refill of queries). */
const MAX_CACHED_SESSIONS = 10_000

export interface AuthOptions {
  sessionTtlMs: number
  /** How long a checked session is trusted without asking the store again (0: never). */
  sessionCacheMs: number
  defaultQuotaBytes: number
}

export interface Authenticated {
  user: User
  tokenHash: string
}

/** An email and a password as sent (at login, a field that was not text arrives as ''). */
export interface Credentials {
  email: string
  password: string
}

export const hashToken = (token: string): string => createHash('sha256').update(token).digest('hex')

/** Emails are unique case-insensitively: `Ann@X.org` and `ann@x.org` are one account. */
export function normalizeEmail(raw: unknown): string {
  if (typeof raw !== 'string') throw invalid('email must be a string')
  const email = raw.trim().normalize('NFC').toLowerCase()
  // Control, format and other invisible characters, and lone surrogates (domain/hidden-characters):
  // nothing a real address holds, not even the joiners and variation selectors a file name may
  // need, but enough to make two accounts look alike, to reorder what a member list shows, or
  // (NUL) to be refused by PostgreSQL.
  if (hasHiddenCharacter(email)) {
    throw invalid('email must not contain control, formatting or invisible characters')
  }
  if (email.length > MAX_EMAIL_LENGTH || !EMAIL.test(email)) throw invalid('email is not a valid address')
  return email
}

function checkPassword(raw: string): string {
  if (raw.length < MIN_PASSWORD_LENGTH)
    throw invalid(`password must be at least ${MIN_PASSWORD_LENGTH} characters`)
  if (raw.length > MAX_PASSWORD_LENGTH)
    throw invalid(`password must be at most ${MAX_PASSWORD_LENGTH} characters`)
  return raw
}

export class AuthService {
  /**
   * Sessions seen in the last `sessionCacheMs`: most requests then need no query to
   * authenticate. A logout here takes effect at once; one on another API node within
   * `sessionCacheMs`. The cached user is used only for what cannot change (id, root folder);
   * quota figures are always read fresh.
   */
  private readonly recentSessions = new Map<string, { user: User; until: Millis }>()

  constructor(
    private readonly meta: MetadataStore,
    private readonly passwords: PasswordHasher,
    private readonly clock: Clock,
    private readonly options: AuthOptions,
  ) {}

  async register(input: Credentials): Promise<{ user: User; token: string }> {
    const email = normalizeEmail(input.email)
    const password = checkPassword(input.password)
    const passwordHash = await this.passwords.hash(password)
    const now = this.clock()
    const user: User = {
      id: newId(),
      email,
      passwordHash,
      quotaBytes: this.options.defaultQuotaBytes,
      usedBytes: 0,
      rootFolderId: newId(),
      createdAt: now,
    }
    await this.meta.transaction(async (tx) => {
      await tx.users.insert(user)
      await tx.nodes.insert(
        newFolder({ id: user.rootFolderId, ownerId: user.id, parentId: null, name: '', at: now }),
      )
    })
    return { user, token: await this.startSession(user.id) }
  }

  /** A wrong password, an unknown email and a malformed one alike: BAD_CREDENTIALS. */
  async login(input: Credentials): Promise<{ user: User; token: string }> {
    // No account has an empty password (nor one past the bound), and hashing 2 MB costs.
    if (input.password === '' || input.password.length > MAX_PASSWORD_LENGTH) {
      throw new AppError('BAD_CREDENTIALS', 'wrong email or password')
    }
    let email: string | null = null
    try {
      email = normalizeEmail(input.email)
    } catch {
      // A malformed email is simply an unknown one: same answer, same time.
    }
    const user = email === null ? null : await this.meta.users.findByEmail(email)
    const ok = await this.passwords.verify(user?.passwordHash ?? null, input.password)
    if (!user || !ok) throw new AppError('BAD_CREDENTIALS', 'wrong email or password')
    return { user, token: await this.startSession(user.id) }
  }

  async logout(tokenHash: string): Promise<void> {
    this.recentSessions.delete(tokenHash)
    await this.meta.sessions.delete(tokenHash)
  }

  /** A fresh copy of the user (the one from `authenticate` may be a few seconds old). */
  async currentUser(userId: string): Promise<User> {
    const user = await this.meta.users.findById(userId)
    if (!user) throw new AppError('UNAUTHORIZED', 'the account no longer exists')
    return user
  }

  /** The user a bearer token or session cookie stands for; UNAUTHORIZED when none. */
  async authenticate(token: string | undefined): Promise<Authenticated> {
    if (!token || token.length > 512) throw new AppError('UNAUTHORIZED', 'a valid session token is required')
    const tokenHash = hashToken(token)
    const now = this.clock()
    const recent = this.recentSessions.get(tokenHash)
    if (recent && recent.until > now) return { user: recent.user, tokenHash }
    // Every request comes through here: one query, not a session lookup and a user lookup.
    const found = await this.meta.sessions.findUser(tokenHash, now)
    if (!found) throw new AppError('UNAUTHORIZED', 'a valid session token is required')
    this.remember(tokenHash, found.user, Math.min(found.expiresAt, now + this.options.sessionCacheMs))
    return { user: found.user, tokenHash }
  }

  async sweepExpiredSessions(): Promise<number> {
    return this.meta.sessions.deleteExpired(this.clock())
  }

  private remember(tokenHash: string, user: User, until: Millis): void {
    if (this.recentSessions.size >= MAX_CACHED_SESSIONS) this.recentSessions.clear()
    this.recentSessions.set(tokenHash, { user, until })
  }

  private async startSession(userId: string): Promise<string> {
    const token = randomBytes(TOKEN_BYTES).toString('base64url')
    const now = this.clock()
    await this.meta.sessions.insert({
      tokenHash: hashToken(token),
      userId,
      createdAt: now,
      expiresAt: now + this.options.sessionTtlMs,
    })
    return token
  }
}

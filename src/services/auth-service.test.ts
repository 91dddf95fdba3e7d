import { createHash } from 'node:crypto'
import { readFile } from 'node:fs/promises'
import argon2 from 'argon2'
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import { openTestMetadataStore, type TestMetadataStore } from '../../test/helpers/databases.js'
import { AppError } from '../domain/errors.js'
import type { Millis } from '../domain/model.js'
import { AuthService } from './auth-service.js'
import { PasswordHasher } from './password-hasher.js'

const HOUR = 3600_000
const SESSION_TTL = 24 * HOUR
const PASSWORD = 'correct horse battery'
/** Cheap, but real argon2id: what matters here is how often it runs and with which parameters. */
const CHEAP_ARGON2 = { memoryKiB: 1024, passes: 1 }

const sha256Hex = (text: string): string => createHash('sha256').update(text).digest('hex')
/** `$argon2id$v=19$m=1024,t=1,p=1` of an encoded argon2 hash: its algorithm and cost. */
const argon2Parameters = (encoded: string): string => encoded.split('$').slice(0, 4).join('$')

/** The AppError a promise rejects with (fails the test when it resolves or throws something else). */
async function appErrorOf(promise: Promise<unknown>): Promise<AppError> {
  const error = await promise.then(
    () => new Error('expected a rejection'),
    (reason: unknown) => reason,
  )
  expect(error).toBeInstanceOf(AppError)
  return error as AppError
}

describe('AuthService', () => {
  let db: TestMetadataStore
  let now: Millis
  let auth: AuthService

  beforeEach(async () => {
    db = await openTestMetadataStore('sqlite')
    now = Date.UTC(2030, 0, 1)
    auth = new AuthService(db.store, new PasswordHasher(CHEAP_ARGON2), () => now, {
      sessionTtlMs: SESSION_TTL,
      // Cached sessions must still end exactly at their expiry.
      sessionCacheMs: 60_000,
      defaultQuotaBytes: 1024 ** 3,
    })
  })
  afterEach(async () => {
    vi.restoreAllMocks()
    await db.cleanup()
  })

  it('runs exactly one argon2 verification, at the real cost, for an unknown or malformed email', async () => {
    const ann = await auth.register({ email: 'ann@example.com', password: PASSWORD })
    const verify = vi.spyOn(argon2, 'verify')
    const hash = vi.spyOn(argon2, 'hash')

    const wrongPassword = await appErrorOf(
      auth.login({ email: 'ann@example.com', password: 'wrong password' }),
    )
    expect(wrongPassword.code).toBe('BAD_CREDENTIALS')
    expect(verify).toHaveBeenCalledTimes(1)
    expect(verify.mock.calls[0]?.[0]).toBe(ann.user.passwordHash)

    const attempts: unknown[] = [
      'nobody@example.com',
      'not an email',
      '',
      '@',
      `${'x'.repeat(300)}@example.com`,
      42,
      null,
      undefined,
    ]
    for (const email of attempts) {
      verify.mockClear()
      const error = await appErrorOf(auth.login({ email, password: 'wrong password' }))
      // The same answer as a wrong password...
      expect({ code: error.code, message: error.message }).toEqual({
        code: wrongPassword.code,
        message: wrongPassword.message,
      })
      // ...after the same work: one verification against a hash of the same algorithm and cost.
      expect(verify, `verifications for email ${JSON.stringify(email)}`).toHaveBeenCalledTimes(1)
      const against = verify.mock.calls[0]?.[0]
      expect(typeof against).toBe('string')
      expect(argon2Parameters(against as string)).toBe(argon2Parameters(ann.user.passwordHash))
    }
    // The decoy is hashed once, up front, not per attempt.
    expect(hash).not.toHaveBeenCalled()
  })

  it('hands out tokens of at least 256 bits of base64url, a new one at every login', async () => {
    const registered = await auth.register({ email: 'bob@example.com', password: PASSWORD })
    const tokens = [registered.token]
    for (let i = 0; i < 5; i++)
      tokens.push((await auth.login({ email: 'bob@example.com', password: PASSWORD })).token)

    for (const token of tokens) {
      expect(token).toMatch(/^[A-Za-z0-9_-]+$/)
      const bytes = Buffer.from(token, 'base64url')
      expect(bytes.length).toBeGreaterThanOrEqual(32)
      expect(bytes.toString('base64url')).toBe(token)
      expect((await auth.authenticate(token)).user.id).toBe(registered.user.id)
    }
    expect(new Set(tokens).size).toBe(tokens.length)
  })

  it('stores session tokens only as hashes', async () => {
    const { user, token } = await auth.register({ email: 'cat@example.com', password: PASSWORD })
    const login = await auth.login({ email: 'cat@example.com', password: PASSWORD })
    const { store } = db

    for (const t of [token, login.token]) {
      expect(await store.sessions.findUser(sha256Hex(t), now)).toMatchObject({ user: { id: user.id } })
      expect(await store.sessions.findUser(t, now)).toBeNull()
    }
    expect((await auth.authenticate(login.token)).tokenHash).toBe(sha256Hex(login.token))

    // Nor is it anywhere in the database's bytes (main file and write-ahead log).
    if (db.config.kind !== 'sqlite') throw new Error('expected a SQLite store')
    const file = db.config.file
    const bytes = Buffer.concat(
      await Promise.all([file, `${file}-wal`].map((path) => readFile(path).catch(() => Buffer.alloc(0)))),
    )
    // The hashes are there: these are the right bytes to look in.
    expect(bytes.includes(sha256Hex(login.token))).toBe(true)
    for (const t of [token, login.token]) {
      expect(bytes.includes(t)).toBe(false)
      expect(bytes.includes(Buffer.from(t, 'base64url'))).toBe(false)
    }
  })

  it('refuses expired sessions and sweeps them, keeping live ones', async () => {
    const start = now
    const { token: early } = await auth.register({ email: 'dan@example.com', password: PASSWORD })
    now = start + SESSION_TTL / 2
    const { token: later } = await auth.login({ email: 'dan@example.com', password: PASSWORD })

    now = start + SESSION_TTL - 1
    expect((await auth.authenticate(early)).user.email).toBe('dan@example.com')
    now = start + SESSION_TTL + 1
    expect((await appErrorOf(auth.authenticate(early))).code).toBe('UNAUTHORIZED')
    expect((await auth.authenticate(later)).user.email).toBe('dan@example.com')

    expect(await auth.sweepExpiredSessions()).toBe(1)
    // Gone, not merely filtered out: not even found as of a time it was valid.
    expect(await db.store.sessions.findUser(sha256Hex(early), start)).toBeNull()
    expect(await db.store.sessions.findUser(sha256Hex(later), now)).not.toBeNull()
    expect((await auth.authenticate(later)).user.email).toBe('dan@example.com')
    expect(await auth.sweepExpiredSessions()).toBe(0)

    now = start + SESSION_TTL / 2 + SESSION_TTL + 1
    expect((await appErrorOf(auth.authenticate(later))).code).toBe('UNAUTHORIZED')
    expect(await auth.sweepExpiredSessions()).toBe(1)
  })

  it('ends a session at logout at once, and one revoked on another node within the cache time', async () => {
    const { token } = await auth.register({ email: 'eve@example.com', password: PASSWORD })
    await auth.authenticate(token)
    await auth.logout(sha256Hex(token))
    expect((await appErrorOf(auth.authenticate(token))).code).toBe('UNAUTHORIZED')

    const { token: other } = await auth.login({ email: 'eve@example.com', password: PASSWORD })
    await auth.authenticate(other)
    // Another API node logs it out: this one trusts its check for at most sessionCacheMs.
    await db.store.sessions.delete(sha256Hex(other))
    expect((await auth.authenticate(other)).user.email).toBe('eve@example.com')
    now += 60_000
    expect((await appErrorOf(auth.authenticate(other))).code).toBe('UNAUTHORIZED')
  })
})

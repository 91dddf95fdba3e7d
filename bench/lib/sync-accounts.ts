// Accounts for bench/sync.ts: many users on one server, registered a few at a time.
import { forEachConcurrently, register } from './api.js'
import type { ServerProcess } from './processes.js'
import { now } from './timing.js'

export interface Accounts {
  emails: string[]
  tokens: string[]
  userIds: string[]
  /** How long registering them all took. */
  ms: number
}

/** Registers `n` users (`concurrency` at a time); index i is user i everywhere. */
export async function registerUsers(
  server: ServerProcess,
  n: number,
  tag: string,
  concurrency: number,
): Promise<Accounts> {
  const accounts: Accounts = { emails: [], tokens: [], userIds: [], ms: 0 }
  const start = now()
  await forEachConcurrently(n, concurrency, async (i) => {
    const email = `sync-${tag}-${i}@example.com`
    const { user, token } = await register(server.url, email)
    accounts.emails[i] = email
    accounts.tokens[i] = token
    accounts.userIds[i] = user.id
  })
  accounts.ms = now() - start
  return accounts
}

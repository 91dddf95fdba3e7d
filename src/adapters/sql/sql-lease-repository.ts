import type { Kysely } from 'kysely'
import type { Millis } from '../../domain/model.js'
import type { LeaseRepository } from '../../ports/metadata/lease-repository.js'
import type { Database } from './schema.js'

export class SqlLeaseRepository implements LeaseRepository {
  constructor(private readonly db: Kysely<Database>) {}

  async acquire(name: string, holder: string, now: Millis, ttlMs: number): Promise<boolean> {
    const expiresAt = now + ttlMs
    // One upsert, atomic on both databases: a new name is inserted; an existing row is taken
    // over only when it has expired or is ours already. On PostgreSQL a racing insert waits
    // for the winner's commit and then evaluates the WHERE against the winner's row (ON
    // CONFLICT reads the latest committed row, not its snapshot), so it finds the lease held
    // and returns nothing. SQLite runs one writer at a time. RETURNING answers a row only when
    // the insert or the update happened.
    const taken = await this.db
      .insertInto('leases')
      .values({ name, holder, expires_at: expiresAt })
      .onConflict((conflict) =>
        conflict
          .column('name')
          .doUpdateSet({ holder, expires_at: expiresAt })
          .where((eb) => eb.or([eb('leases.expires_at', '<=', now), eb('leases.holder', '=', holder)])),
      )
      .returning('holder')
      .executeTakeFirst()
    return taken !== undefined
  }

  async release(name: string, holder: string): Promise<void> {
    await this.db.deleteFrom('leases').where('name', '=', name).where('holder', '=', holder).execute()
  }
}

import type { Millis } from '../../domain/model.js'

/**
 * Named leases: at most one holder of a name at a time, until the lease expires. For jobs that
 * several API nodes would otherwise repeat (upkeep); never for correctness, since a holder
 * that stalls past its expiry cannot tell that another has taken over.
 */
export interface LeaseRepository {
  /**
   * Takes the lease for `holder` until `now + ttlMs` when no one holds it, it has expired, or
   * `holder` holds it already (a renewal). One statement, so of several holders racing for it
   * exactly one gets it. Answers whether `holder` holds it now.
   */
  acquire(name: string, holder: string, now: Millis, ttlMs: number): Promise<boolean>
  /** Gives the lease up when `holder` holds it; leaves another holder's alone. */
  release(name: string, holder: string): Promise<void>
}

import type { Millis } from './model.js'

const HOUR = 3_600_000
const DAY = 24 * HOUR
const WEEK = 7 * DAY

/**
 * How much history a deployment keeps (configured by VERSION_* variables, see README).
 * The current version is always kept, whatever the policy.
 */
export interface RetentionPolicy {
  /** At most this many versions per file, the current one included; the oldest go first. */
  maxVersions: number
  /** Older versions than this are dropped; 0 keeps versions of any age. */
  maxAgeMs: Millis
  /**
   * Thin history as Dropbox and Nextcloud do: every version of the last hour; then one per
   * hour for a day, one per day for a month, and one per week beyond.
   */
  thin: boolean
}

export const DEFAULT_RETENTION: RetentionPolicy = { maxVersions: 100, maxAgeMs: 30 * DAY, thin: true }

export interface AgedVersion {
  version: number
  createdAt: Millis
}

/**
 * The width of the slot a version of this age shares with its neighbours, of which only the
 * newest is kept; 0 for "keep every one".
 */
function slotWidth(ageMs: Millis): Millis {
  if (ageMs < HOUR) return 0
  if (ageMs < DAY) return HOUR
  if (ageMs < 30 * DAY) return DAY
  return WEEK
}

/**
 * Which versions of one file the policy drops at `now`. Pure, so that it can be checked on
 * its own and applied the same way at every new version and in the periodic sweep; applying
 * it twice at the same `now` drops nothing more.
 */
export function versionsToPrune<V extends AgedVersion>(
  versions: readonly V[],
  currentVersion: number | null,
  now: Millis,
  policy: RetentionPolicy,
): V[] {
  const newestFirst = [...versions].sort((a, b) => b.version - a.version)
  const kept: V[] = []
  const dropped: V[] = []
  const takenSlots = new Set<string>()
  for (const candidate of newestFirst) {
    if (candidate.version === currentVersion) {
      kept.push(candidate)
      continue
    }
    const age = Math.max(0, now - candidate.createdAt)
    if (policy.maxAgeMs > 0 && age > policy.maxAgeMs) {
      dropped.push(candidate)
      continue
    }
    const width = policy.thin ? slotWidth(age) : 0
    if (width > 0) {
      // Slots are fixed in time (not relative to now), so that a version kept today is
      // still the one kept tomorrow, and the thinning is stable from sweep to sweep.
      const slot = `${width}:${Math.floor(candidate.createdAt / width)}`
      if (takenSlots.has(slot)) {
        dropped.push(candidate)
        continue
      }
      takenSlots.add(slot)
    }
    kept.push(candidate)
  }
  // The count limit last, oldest first; the current version is never among them.
  const excess = kept.length - Math.max(1, policy.maxVersions)
  if (excess > 0) {
    const oldestFirst = kept.filter((v) => v.version !== currentVersion).sort((a, b) => a.version - b.version)
    dropped.push(...oldestFirst.slice(0, excess))
  }
  return dropped
}

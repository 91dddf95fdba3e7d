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

export interface AgedVersion {
  version: number
  createdAt: Millis
}

/**
 * The slots of thinned history, youngest first: from `fromAge` on (until the next entry's), a
 * version shares a slot `width` wide with its neighbours, and only the newest of them is kept.
 * Younger than the first entry, every version is kept. Each width divides the next, so two
 * versions that share a slot also share every wider one.
 */
const SLOTS: readonly { fromAge: Millis; width: Millis }[] = [
  { fromAge: HOUR, width: HOUR },
  { fromAge: DAY, width: DAY },
  { fromAge: 30 * DAY, width: WEEK },
]

/** The width of the slot a version of this age is in; 0 for "keep every one". */
function slotWidth(ageMs: Millis): Millis {
  let width = 0
  for (const slot of SLOTS) if (ageMs >= slot.fromAge) width = slot.width
  return width
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

/**
 * The earliest time after `now` at which `versionsToPrune` may drop a version of this file that
 * it does not drop at `now`; null when time alone will never change its answer. Times are
 * whole milliseconds. The sweep visits a file only once this time has come (its due time).
 *
 * Only two things change with time alone: a version ages out (`maxAgeMs`), and a version moves
 * into a wider slot at the ages in SLOTS (slots are fixed in time, so nothing else moves). The
 * count limit changes only when versions are added, and that prunes at once.
 *
 * Exact for what is left after pruning at `now` (the only way the services call it): then a
 * version is dropped at the answer. Two versions sharing a slot of some width first collide
 * when the younger reaches that slot's `fromAge`, and the older one is still in it then (it is
 * less than one width older, and each age band is wider than its slot). For any other set
 * (something is due already) it answers the next time any version ages out or changes slot
 * width: early, never late.
 */
export function nextPruneAt(
  versions: readonly AgedVersion[],
  currentVersion: number | null,
  now: Millis,
  policy: RetentionPolicy,
): Millis | null {
  // The current version is never dropped and takes no slot (see versionsToPrune).
  const older = versions.filter((v) => v.version !== currentVersion)
  const nothingDueNow = versionsToPrune(versions, currentVersion, now, policy).length === 0
  const changes = nothingDueNow ? dropsAhead(older, policy) : widthChangesAndAgeOuts(older, policy)
  let earliest: Millis | null = null
  for (const at of changes) if (at > now && (earliest === null || at < earliest)) earliest = at
  return earliest
}

/** When each version would age out, and when each that shares a slot would collide in it. */
function dropsAhead(older: readonly AgedVersion[], policy: RetentionPolicy): Millis[] {
  const drops = policy.maxAgeMs > 0 ? older.map((v) => ageOutAt(v, policy)) : []
  if (!policy.thin) return drops
  for (const { fromAge, width } of SLOTS) {
    const bySlot = new Map<number, Millis[]>()
    for (const { createdAt } of older) {
      const slot = Math.floor(createdAt / width)
      const members = bySlot.get(slot)
      if (members) members.push(createdAt)
      else bySlot.set(slot, [createdAt])
    }
    // Each but the oldest of a slot meets an older one there as it reaches `fromAge`; one that
    // has left the slot by then (it aged out) is covered by its own, earlier, age-out.
    for (const createdAts of bySlot.values()) {
      createdAts.sort((a, b) => a - b)
      for (const createdAt of createdAts.slice(1)) drops.push(createdAt + fromAge)
    }
  }
  return drops
}

/** Every time at which some version ages out or moves into a wider slot. */
function widthChangesAndAgeOuts(older: readonly AgedVersion[], policy: RetentionPolicy): Millis[] {
  const changes: Millis[] = []
  for (const version of older) {
    if (policy.maxAgeMs > 0) changes.push(ageOutAt(version, policy))
    if (policy.thin) for (const { fromAge } of SLOTS) changes.push(version.createdAt + fromAge)
  }
  return changes
}

/** The first whole millisecond at which the version is older than `maxAgeMs` (dropped). */
const ageOutAt = (version: AgedVersion, policy: RetentionPolicy): Millis =>
  version.createdAt + policy.maxAgeMs + 1

/**
 * What the due times in the database were computed under: when it differs from the running
 * policy's, every file's due time is stale. Bump RULES when versionsToPrune or nextPruneAt
 * change what they answer for the same policy.
 */
export function retentionFingerprint(policy: RetentionPolicy): string {
  const RULES = 1
  return JSON.stringify({
    rules: RULES,
    maxVersions: policy.maxVersions,
    maxAgeMs: policy.maxAgeMs,
    thin: policy.thin,
  })
}

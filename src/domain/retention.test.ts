import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import type { Millis } from './model.js'
import {
  type AgedVersion,
  nextPruneAt,
  type RetentionPolicy,
  retentionFingerprint,
  versionsToPrune,
} from './retention.js'

const MINUTE = 60_000
const HOUR = 60 * MINUTE
const DAY = 24 * HOUR
/** Midnight UTC: a whole hour and day of the epoch, so that slots start where the tests expect. */
const NOW = Date.UTC(2030, 0, 7)
/** A policy like the server's default (100 versions, 30 days, thinned). */
const POLICY: RetentionPolicy = { maxVersions: 100, maxAgeMs: 30 * DAY, thin: true }

/** Replay a failure with the seed it prints: FC_SEED=<seed> npx vitest run src/domain/retention.test.ts */
const SEED = Number(process.env.FC_SEED ?? 20_300_107)
const RUNS = Number(process.env.FC_RUNS ?? 3000)

const version = (number: number, createdAt: Millis): AgedVersion => ({ version: number, createdAt })
const numbers = (versions: readonly AgedVersion[]): number[] =>
  versions.map((v) => v.version).sort((a, b) => a - b)
const dropped = (
  versions: readonly AgedVersion[],
  current: number | null,
  at: Millis,
  policy: RetentionPolicy,
) => numbers(versionsToPrune(versions, current, at, policy))

describe('nextPruneAt', () => {
  const policy: RetentionPolicy = { maxVersions: 100, maxAgeMs: 30 * DAY, thin: true }

  it('answers when the one older version ages out, when it shares no slot', () => {
    const versions = [version(1, NOW - 5 * DAY), version(2, NOW - MINUTE)]
    expect(nextPruneAt(versions, 2, NOW, policy)).toBe(NOW - 5 * DAY + 30 * DAY + 1)
    expect(dropped(versions, 2, NOW + 25 * DAY, policy)).toEqual([])
    expect(dropped(versions, 2, NOW + 25 * DAY + 1, policy)).toEqual([1])
  })

  it('answers when the younger of two versions in one hour turns an hour old', () => {
    const versions = [version(1, NOW - 20 * MINUTE), version(2, NOW - 10 * MINUTE), version(3, NOW)]
    const due = nextPruneAt(versions, 3, NOW, policy)
    expect(due).toBe(NOW - 10 * MINUTE + HOUR)
    expect(dropped(versions, 3, (due as number) - 1, policy)).toEqual([])
    expect(dropped(versions, 3, due as number, policy)).toEqual([1])
  })

  it('answers when two versions of one day but different hours both reach day slots', () => {
    const versions = [version(1, NOW - 5 * HOUR), version(2, NOW - 2 * HOUR), version(3, NOW)]
    const due = nextPruneAt(versions, 3, NOW, policy)
    expect(due).toBe(NOW - 2 * HOUR + DAY)
    expect(dropped(versions, 3, (due as number) - 1, policy)).toEqual([])
    expect(dropped(versions, 3, due as number, policy)).toEqual([1])
  })

  it('ignores the current version: it is never dropped and takes no slot', () => {
    const versions = [version(1, NOW - 10 * MINUTE), version(2, NOW - 5 * MINUTE)]
    expect(nextPruneAt(versions, 1, NOW, policy)).toBe(NOW - 5 * MINUTE + 30 * DAY + 1)
    expect(nextPruneAt([version(1, NOW - 90 * DAY)], 1, NOW, policy)).toBeNull()
  })

  it('is null when nothing will ever age out', () => {
    const versions = [version(1, NOW - 3 * DAY), version(2, NOW - 2 * DAY), version(3, NOW)]
    expect(nextPruneAt(versions, 3, NOW, { ...policy, maxAgeMs: 0, thin: false })).toBeNull()
    // Thinned, but in slots of their own for ever (two different weeks by then).
    const apart = [version(1, NOW - 10 * DAY), version(2, NOW - DAY), version(3, NOW)]
    expect(nextPruneAt(apart, 3, NOW, { ...policy, maxAgeMs: 0 })).toBeNull()
    expect(nextPruneAt([], null, NOW, policy)).toBeNull()
  })

  it('answers the next change of slot width or age when something is due already', () => {
    // Version 1 is past the age limit now; the next change is version 2 turning an hour old.
    const versions = [version(1, NOW - 31 * DAY), version(2, NOW - 50 * MINUTE), version(3, NOW)]
    expect(dropped(versions, 3, NOW, policy)).toEqual([1])
    expect(nextPruneAt(versions, 3, NOW, policy)).toBe(NOW + 10 * MINUTE)
  })
})

describe('retentionFingerprint', () => {
  it('differs for every setting and is stable for equal policies', () => {
    const base = retentionFingerprint(POLICY)
    expect(retentionFingerprint({ ...POLICY })).toBe(base)
    expect(retentionFingerprint({ ...POLICY, maxVersions: 99 })).not.toBe(base)
    expect(retentionFingerprint({ ...POLICY, maxAgeMs: DAY })).not.toBe(base)
    expect(retentionFingerprint({ ...POLICY, thin: false })).not.toBe(base)
  })
})

// ------------------------------------------------------------------------------------------
// Properties, over random histories and policies

/** Ages that put versions near each other and near every boundary (hour, day, 30 days, limit). */
const ageArb = fc.oneof(
  fc.integer({ min: -HOUR, max: 3 * HOUR }),
  fc.integer({ min: 0, max: 3 * DAY }),
  fc.integer({ min: 25 * DAY, max: 40 * DAY }),
  fc.integer({ min: 0, max: 120 * DAY }),
)

const historyArb = fc
  .record({
    ages: fc.array(ageArb, { maxLength: 12 }),
    // Versions are numbered in the order they were made, except when a clock went backwards.
    inOrder: fc.boolean(),
    shuffle: fc.array(fc.nat(), { maxLength: 12 }),
    current: fc.oneof(
      fc.constant<'newest' | 'none' | number>('newest'),
      fc.constant('none' as const),
      fc.nat(11),
    ),
  })
  .map(({ ages, inOrder, shuffle, current }) => {
    const createdAts = ages.map((age) => NOW - age).sort((a, b) => a - b)
    const order = createdAts.map((_, i) => i)
    if (!inOrder) order.sort((a, b) => (shuffle[a] ?? 0) - (shuffle[b] ?? 0))
    const versions = createdAts.map((createdAt, i) => version((order[i] as number) + 1, createdAt))
    const currentVersion =
      current === 'none' ? null : current === 'newest' ? versions.length || null : (current % 12) + 1
    return { versions, currentVersion }
  })

const policyArb: fc.Arbitrary<RetentionPolicy> = fc.record({
  maxVersions: fc.integer({ min: 1, max: 15 }),
  maxAgeMs: fc.oneof(
    fc.constant(0),
    fc.constantFrom(HOUR, DAY, 2 * DAY, 30 * DAY),
    fc.integer({ min: 1, max: 60 * DAY }),
  ),
  thin: fc.boolean(),
})

/**
 * Every time after `now` at which the answer of versionsToPrune could change, worked out here
 * independently of nextPruneAt (each age-out and slot boundary, and the instant before it), so
 * that checking at these instants checks every instant.
 */
function instantsAfter(versions: readonly AgedVersion[], now: Millis, policy: RetentionPolicy): Millis[] {
  const instants = new Set<Millis>()
  for (const { createdAt } of versions) {
    for (const boundary of [HOUR, DAY, 30 * DAY, policy.maxAgeMs, policy.maxAgeMs + 1]) {
      for (const at of [createdAt + boundary - 1, createdAt + boundary]) if (at > now) instants.add(at)
    }
  }
  return [...instants].sort((a, b) => a - b)
}

const FAR_FUTURE = 400 * DAY

describe('nextPruneAt, properties', () => {
  it(`versionsToPrune answers the same at every time in [now, nextPruneAt) as at now (seed ${SEED})`, () => {
    fc.assert(
      fc.property(historyArb, policyArb, fc.integer({ min: 0, max: 2 * DAY }), (history, policy, skew) => {
        const { versions, currentVersion } = history
        const now = NOW + skew
        const atNow = dropped(versions, currentVersion, now, policy)
        const next = nextPruneAt(versions, currentVersion, now, policy)
        if (next !== null) expect(next).toBeGreaterThan(now)
        const until = next ?? Number.POSITIVE_INFINITY
        for (const at of [
          ...instantsAfter(versions, now, policy),
          now + FAR_FUTURE,
          ...(next ? [next - 1] : []),
        ]) {
          if (at >= until) continue
          expect(dropped(versions, currentVersion, at, policy)).toEqual(atNow)
        }
      }),
      { seed: SEED, numRuns: RUNS },
    )
  })

  it(`is exact on what a prune leaves: nothing due before it, something due at it (seed ${SEED})`, () => {
    fc.assert(
      fc.property(historyArb, policyArb, (history, policy) => {
        const { versions, currentVersion } = history
        const doomed = new Set(numbers(versionsToPrune(versions, currentVersion, NOW, policy)))
        const kept = versions.filter((v) => !doomed.has(v.version))
        // Pruning twice at one time drops nothing more.
        expect(dropped(kept, currentVersion, NOW, policy)).toEqual([])
        const next = nextPruneAt(kept, currentVersion, NOW, policy)
        for (const at of instantsAfter(kept, NOW, policy)) {
          if (next !== null && at >= next) break
          expect(dropped(kept, currentVersion, at, policy)).toEqual([])
        }
        if (next === null) expect(dropped(kept, currentVersion, NOW + FAR_FUTURE, policy)).toEqual([])
        else expect(dropped(kept, currentVersion, next, policy).length).toBeGreaterThan(0)
      }),
      { seed: SEED, numRuns: RUNS },
    )
  })
})

import { afterEach } from 'vitest'
import { onPausePoint, type PausePoint } from '../../src/support/pause-points.js'

export interface Held {
  /** Resolves when an operation has reached the point and is being held. */
  arrived: Promise<void>
  /** Lets the held operation go on (and any later one pass). */
  release(): void
  /** Removes the hook, if no operation has taken it yet. */
  remove(): void
}

/**
 * Holds the next operation that reaches `point` (src/support/pause-points.ts) until `release()`;
 * operations after it pass. Tests release and remove it in `afterEach`, so that a failed
 * assertion never leaves a request hanging.
 */
export function holdAt(point: PausePoint): Held {
  let reached!: () => void
  let release!: () => void
  const arrived = new Promise<void>((resolve) => {
    reached = resolve
  })
  const released = new Promise<void>((resolve) => {
    release = resolve
  })
  const remove = onPausePoint(point, async () => {
    remove()
    reached()
    await released
  })
  return { arrived, release, remove }
}

/**
 * `holdAt` for a suite: every hold it makes is released and removed after each test, so that a
 * failed assertion never leaves a request hanging into the next test.
 */
export function holdsReleasedAfterEach(): (point: PausePoint) => Held {
  const made: Held[] = []
  afterEach(() => {
    for (const held of made.splice(0)) {
      held.release()
      held.remove()
    }
  })
  return (point) => {
    const held = holdAt(point)
    made.push(held)
    return held
  }
}

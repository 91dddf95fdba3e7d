import type { Millis } from './model.js'

/** The time source services use; tests pass a virtual clock to move time without sleeping. */
export type Clock = () => Millis

export const systemClock: Clock = () => Date.now()

import { randomUUID } from 'node:crypto'

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/

/** Ids of users, folders, files and upload sessions: random UUIDs, never guessable or sequential. */
export const newId = (): string => randomUUID()

export const isId = (value: unknown): value is string => typeof value === 'string' && UUID.test(value)

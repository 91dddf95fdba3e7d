/** A positive whole number from the environment (a benchmark knob), or `fallback` when unset. */
export function intEnv(name: string, fallback: number): number {
  const raw = process.env[name]
  if (raw === undefined || raw === '') return fallback
  const value = Number(raw)
  if (!Number.isSafeInteger(value) || value < 1)
    throw new Error(`${name} must be a positive integer (got "${raw}")`)
  return value
}

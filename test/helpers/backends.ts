import { postgresAvailable } from './databases.js'

/**
 * Every end-to-end suite runs once per metadata backend: `[name, available]`. PostgreSQL runs
 * wherever it answers (always on our machines and CI); global setup says loudly when it does not.
 */
export const BACKENDS: Array<['sqlite' | 'postgres', boolean]> = [
  ['sqlite', true],
  ['postgres', postgresAvailable()],
]

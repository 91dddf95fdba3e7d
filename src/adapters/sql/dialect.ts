/**
 * The databases the SQL adapter runs on. The repositories are the same for both; this name
 * is passed only to the few places that must differ (row locks, the name collation).
 */
export type SqlDialect = 'sqlite' | 'postgres'

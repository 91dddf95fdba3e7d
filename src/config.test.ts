import { describe, expect, it } from 'vitest'
import { loadConfig } from './config.js'

describe('loadConfig', () => {
  it('refuses a collector grace period under a minute: no collector may delete what it marked a moment ago', () => {
    expect(() => loadConfig({ GC_GRACE_SECONDS: '0' })).toThrow(/GC_GRACE_SECONDS must be an integer >= 60/)
    expect(() => loadConfig({ GC_GRACE_SECONDS: '59' })).toThrow(/GC_GRACE_SECONDS/)
    expect(loadConfig({ GC_GRACE_SECONDS: '60' }).gc.graceMs).toBe(60_000)
    expect(loadConfig({}).gc.graceMs).toBe(3_600_000)
  })
})

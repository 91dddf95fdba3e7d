import { readFileSync } from 'node:fs'
import { describe, expect, it } from 'vitest'
import { README_TABLE_BEGIN, README_TABLE_END } from '../scripts/readme-variables.js'
import { loadConfig } from './config.js'
import { VARIABLES, variableTable } from './config-variables.js'

describe('loadConfig', () => {
  it('refuses a collector grace period under a minute: no collector may delete what it marked a moment ago', () => {
    expect(() => loadConfig({ GC_GRACE_SECONDS: '0' })).toThrow(/GC_GRACE_SECONDS must be an integer >= 60/)
    expect(() => loadConfig({ GC_GRACE_SECONDS: '59' })).toThrow(/GC_GRACE_SECONDS/)
    expect(loadConfig({ GC_GRACE_SECONDS: '60' }).gc.graceMs).toBe(60_000)
    expect(loadConfig({}).gc.graceMs).toBe(3_600_000)
  })

  it('reads the least chunk size (64 KiB unset), from 1 byte up to the fixed 4 MiB chunk size', () => {
    expect(loadConfig({}).uploads.minChunkBytes).toBe(65_536)
    expect(loadConfig({ UPLOAD_MIN_CHUNK_BYTES: '1' }).uploads.minChunkBytes).toBe(1)
    expect(loadConfig({ UPLOAD_MIN_CHUNK_BYTES: '4194304' }).uploads.minChunkBytes).toBe(4 * 1024 * 1024)
    expect(() => loadConfig({ UPLOAD_MIN_CHUNK_BYTES: '0' })).toThrow(
      /UPLOAD_MIN_CHUNK_BYTES must be an integer >= 1/,
    )
    expect(() => loadConfig({ UPLOAD_MIN_CHUNK_BYTES: '4194305' })).toThrow(
      /UPLOAD_MIN_CHUNK_BYTES must be at most/,
    )
  })

  it('reads TRUST_PROXY and LOG_LEVEL like the rest, refusing what it cannot read instead of guessing', () => {
    expect(loadConfig({}).http.trustProxy).toBe(false)
    for (const on of ['1', 'true', 'yes', 'on', 'TRUE'])
      expect(loadConfig({ TRUST_PROXY: on }).http.trustProxy).toBe(true)
    for (const off of ['0', 'false', 'no', 'off'])
      expect(loadConfig({ TRUST_PROXY: off }).http.trustProxy).toBe(false)
    expect(() => loadConfig({ TRUST_PROXY: 'nginx' })).toThrow(/TRUST_PROXY must be true or false/)
    expect(loadConfig({}).logLevel).toBe('info')
    expect(loadConfig({ LOG_LEVEL: 'silent' }).logLevel).toBe('silent')
    expect(() => loadConfig({ LOG_LEVEL: 'verbose' })).toThrow(/LOG_LEVEL must be one of/)
  })

  it('reads exactly the variables of the table, so none goes undocumented', () => {
    const read = new Set<string>()
    // Read in both shapes: the PostgreSQL timeouts are read only when DATABASE_URL is set.
    for (const given of [{}, { DATABASE_URL: 'postgres://db/tessera' }] as Record<string, string>[]) {
      const watched = new Proxy(given, {
        get(target, name) {
          if (typeof name === 'string') read.add(name)
          return typeof name === 'string' ? target[name] : undefined
        },
      })
      loadConfig(watched)
    }
    expect([...read].sort()).toEqual(Object.keys(VARIABLES).sort())
  })

  it("takes each integer's default from the table, and refuses a value under its bound", () => {
    const config = loadConfig({})
    expect(config.uploads.maxOpenSessions).toBe(VARIABLES.UPLOAD_MAX_OPEN_SESSIONS.default)
    expect(config.http.port).toBe(VARIABLES.PORT.default)
    expect(() => loadConfig({ JOURNAL_MAX_ENTRIES: '99' })).toThrow(
      /JOURNAL_MAX_ENTRIES must be an integer >= 100/,
    )
  })

  it("README.md's table of variables is the one generated from the code (npm run docs:config)", () => {
    const readme = readFileSync(new URL('../README.md', import.meta.url), 'utf8')
    const begin = readme.indexOf(README_TABLE_BEGIN) + README_TABLE_BEGIN.length
    const table = readme.slice(begin, readme.indexOf(README_TABLE_END)).trim()
    expect(table).toBe(variableTable())
  })
})

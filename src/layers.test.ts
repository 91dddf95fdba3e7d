import { readdirSync, readFileSync } from 'node:fs'
import path from 'node:path'
import { describe, expect, it } from 'vitest'

/**
 * The layers of src/ and what each may import (docs/ARCHITECTURE.md): imports run down, never
 * up, so that the domain knows nothing of storage or HTTP, the services know the ports but no
 * adapter, and only the composition root (and the entry points beside it) knows them all.
 */
const MAY_IMPORT: Record<string, readonly string[]> = {
  domain: ['domain'],
  support: ['support', 'domain'],
  ports: ['ports', 'domain'],
  services: ['services', 'ports', 'domain', 'support'],
  adapters: ['adapters', 'ports', 'domain', 'support'],
  http: ['http', 'services', 'domain', 'support', 'config'],
  config: ['config', 'domain'],
}
/** Entry points and the composition root: they wire everything, so they may import anything. */
const WIRING = ['composition', 'main', 'background-jobs', 'cli']

const SRC = path.resolve(import.meta.dirname)

function productionFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const full = path.join(dir, entry.name)
    if (entry.isDirectory()) return productionFiles(full)
    return entry.name.endsWith('.ts') && !entry.name.endsWith('.test.ts') ? [full] : []
  })
}

/** `domain` for src/domain/x.ts, `config` for src/config.ts and src/config-variables.ts. */
function layerOf(file: string): string {
  const [first = ''] = path.relative(SRC, file).split(path.sep)
  const name = first.replace(/\.ts$/, '')
  return name.startsWith('config') ? 'config' : name
}

function relativeImports(file: string): string[] {
  const source = readFileSync(file, 'utf8')
  const specifiers = [...source.matchAll(/(?:from|import)\s*\(?\s*'(\.[^']+)'/g)].map(
    (match) => match[1] ?? '',
  )
  return specifiers.map((specifier) => path.resolve(path.dirname(file), specifier))
}

describe('layers', () => {
  it('every import in src/ runs down the layers, and none reaches into test/ or bench/', () => {
    const violations: string[] = []
    for (const file of productionFiles(SRC)) {
      const from = layerOf(file)
      for (const target of relativeImports(file)) {
        const name = path.relative(SRC, file)
        if (!target.startsWith(SRC + path.sep)) {
          violations.push(`${name} imports ${path.relative(SRC, target)}, outside src/`)
          continue
        }
        const to = layerOf(target)
        if (WIRING.includes(from)) continue
        if (!(MAY_IMPORT[from] ?? []).includes(to))
          violations.push(`${name} (${from}) imports ${to}: ${path.relative(SRC, target)}`)
      }
    }
    expect(violations).toEqual([])
  })

  it('knows every folder of src/', () => {
    const layers = readdirSync(SRC, { withFileTypes: true })
      .filter((entry) => entry.isDirectory())
      .map((entry) => entry.name)
    for (const layer of layers) expect([...Object.keys(MAY_IMPORT), ...WIRING]).toContain(layer)
  })
})

/**
 * Lists production files over 400 lines and functions over 60 (the limits of STYLE.md and
 * issue 11): `npx tsx scripts/code-size.ts [dir]`, exiting 1 when it lists anything;
 * src/code-size.test.ts keeps src/ within them. Migrations are left out: each is a frozen
 * record of a schema change, read top to bottom, and never edited once released.
 */
import { readdirSync, readFileSync } from 'node:fs'
import path from 'node:path'
import ts from 'typescript'

export const MAX_FILE_LINES = 400
export const MAX_FUNCTION_LINES = 60

export interface Oversize {
  file: string
  what: string
  lines: number
}

export function oversizedCode(root: string): Oversize[] {
  const found: Oversize[] = []
  for (const file of sourceFiles(root)) {
    const text = readFileSync(file, 'utf8')
    const source = ts.createSourceFile(file, text, ts.ScriptTarget.Latest, true)
    const lines = source.getLineAndCharacterOfPosition(text.length).line + 1
    if (lines > MAX_FILE_LINES) found.push({ file, what: '(file)', lines })
    const visit = (node: ts.Node) => {
      if (ts.isFunctionLike(node) && 'body' in node && node.body) {
        const start = source.getLineAndCharacterOfPosition(node.getStart()).line
        const end = source.getLineAndCharacterOfPosition(node.getEnd()).line
        if (end - start + 1 > MAX_FUNCTION_LINES)
          found.push({ file, what: nameOf(node), lines: end - start + 1 })
      }
      ts.forEachChild(node, visit)
    }
    visit(source)
  }
  return found
}

function nameOf(node: ts.SignatureDeclaration): string {
  const line = node.getSourceFile().getLineAndCharacterOfPosition(node.getStart()).line + 1
  const own = node.name?.getText()
  const parent = node.parent
  const assigned =
    ts.isVariableDeclaration(parent) || ts.isPropertyAssignment(parent) ? parent.name.getText() : undefined
  return `${own ?? assigned ?? '(anonymous)'} at line ${line}`
}

function sourceFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const full = path.join(dir, entry.name)
    if (entry.isDirectory()) return entry.name === 'migrations' ? [] : sourceFiles(full)
    return entry.name.endsWith('.ts') && !entry.name.endsWith('.test.ts') ? [full] : []
  })
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const found = oversizedCode(process.argv[2] ?? 'src')
  for (const { file, what, lines } of found) console.log(`${file}: ${what}: ${lines} lines`)
  process.exitCode = found.length > 0 ? 1 : 0
}

import { MAX_NAME_BYTES } from './names.js'

/**
 * The name under which a write that lost a race is kept, as the contract spells it:
 * `name (conflicted copy <date>).ext`, with ` 2`, ` 3`... inside the brackets when that
 * name is taken too.
 */
export function conflictedCopyName(name: string, at: Date, attempt = 1): string {
  const date = at.toISOString().slice(0, 10)
  return markedName(name, `conflicted copy ${date}${attempt > 1 ? ` ${attempt}` : ''}`)
}

/**
 * The name of an item restored from the trash to a place where its name is taken now. A
 * folder's name has no extension to keep: `2024.06 (restored)`.
 */
export function restoredName(name: string, kind: 'file' | 'folder', attempt = 1): string {
  return markedName(name, attempt > 1 ? `restored ${attempt}` : 'restored', kind === 'file')
}

/**
 * The name a migration gives a sibling whose name differed only in case from an older one's,
 * back when that was allowed: `Readme (case conflict).txt`, then ` 2`, ` 3`...
 */
export function caseConflictName(name: string, attempt = 1): string {
  return markedName(name, attempt > 1 ? `case conflict ${attempt}` : 'case conflict')
}

/**
 * `stem (marker).ext`. The stem is shortened (never the extension) to stay within 255 bytes.
 */
function markedName(name: string, marker: string, keepExtension = true): string {
  const dot = name.lastIndexOf('.')
  const hasExtension = keepExtension && dot > 0 && dot < name.length - 1
  const stem = hasExtension ? name.slice(0, dot) : name
  const extension = hasExtension ? name.slice(dot) : ''
  const suffix = ` (${marker})`
  const budget = MAX_NAME_BYTES - Buffer.byteLength(suffix + extension, 'utf8')
  return truncateToBytes(stem, Math.max(1, budget)) + suffix + extension
}

function truncateToBytes(text: string, maxBytes: number): string {
  if (Buffer.byteLength(text, 'utf8') <= maxBytes) return text
  let result = ''
  for (const char of text) {
    if (Buffer.byteLength(result + char, 'utf8') > maxBytes) break
    result += char
  }
  return result
}

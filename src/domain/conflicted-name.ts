import { MAX_NAME_BYTES } from './names.js'

/**
 * The name under which a write that lost a race is kept, as the contract spells it:
 * `name (conflicted copy <date>).ext`, with ` 2`, ` 3`... inside the brackets when that
 * name is taken too. The stem is shortened (never the extension) to stay within 255 bytes.
 */
export function conflictedCopyName(name: string, at: Date, attempt = 1): string {
  const dot = name.lastIndexOf('.')
  const hasExtension = dot > 0 && dot < name.length - 1
  const stem = hasExtension ? name.slice(0, dot) : name
  const extension = hasExtension ? name.slice(dot) : ''
  const date = at.toISOString().slice(0, 10)
  const marker = ` (conflicted copy ${date}${attempt > 1 ? ` ${attempt}` : ''})`
  const budget = MAX_NAME_BYTES - Buffer.byteLength(marker + extension, 'utf8')
  return truncateToBytes(stem, Math.max(1, budget)) + marker + extension
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

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
 * `stem (marker).ext`, always within MAX_NAME_BYTES: the stem is shortened, never the marker
 * (it is what tells the copies apart) nor the extension (it says what opens the file). An
 * "extension" that leaves no room for the marker beside it (`a.` + 253 × `x`) is no extension
 * a program looks at: then the whole name is shortened instead.
 */
function markedName(raw: string, marker: string, keepExtension = true): string {
  // Names stored before they were normalised may be NFD; the name made here is NFC, like any new one.
  const name = raw.normalize('NFC')
  const suffix = ` (${marker})`
  const dot = name.lastIndexOf('.')
  let extension = keepExtension && dot > 0 && dot < name.length - 1 ? name.slice(dot) : ''
  if (Buffer.byteLength(suffix + extension, 'utf8') >= MAX_NAME_BYTES) extension = ''
  const stem = name.slice(0, name.length - extension.length)
  return shortened(stem, MAX_NAME_BYTES - Buffer.byteLength(suffix + extension, 'utf8')) + suffix + extension
}

const graphemes = new Intl.Segmenter('und', { granularity: 'grapheme' })
/** A joiner left at the end of a cut has nothing to join: the name rules would refuse it. */
const TRAILING_JOINERS = /[\u200c\u200d]+$/u

/**
 * The longest start of `text` within `maxBytes` of UTF-8 that ends between two graphemes (so
 * an accent, an emoji's skin tone or a flag's tags are never cut from their base), or, when
 * not even the first grapheme fits, between two code points: never inside a surrogate pair
 * or a UTF-8 sequence. A start of an NFC string cut there is NFC too.
 */
export function shortened(text: string, maxBytes: number): string {
  if (Buffer.byteLength(text, 'utf8') <= maxBytes) return text
  let result = ''
  let bytes = 0
  for (const { segment } of graphemes.segment(text)) {
    const size = Buffer.byteLength(segment, 'utf8')
    if (bytes + size > maxBytes) break
    result += segment
    bytes += size
  }
  if (result === '') {
    for (const char of text) {
      const size = Buffer.byteLength(char, 'utf8')
      if (bytes + size > maxBytes) break
      result += char
      bytes += size
    }
  }
  return result.replace(TRAILING_JOINERS, '')
}

import { AppError } from './errors.js'

/** Contract: names are 1–255 bytes of UTF-8, with no `/`, no NUL, and not `.` or `..`. */
export const MAX_NAME_BYTES = 255
const LONE_SURROGATE = /\p{Cs}/u

/**
 * Validates a file or folder name and returns it in Unicode NFC, the form it is stored in,
 * so that the same name typed on macOS (NFD) and on Linux (NFC) is one name.
 */
export function normalizeName(raw: unknown): string {
  if (typeof raw !== 'string') throw new AppError('INVALID_NAME', 'name must be a string')
  const name = raw.normalize('NFC')
  const bytes = Buffer.byteLength(name, 'utf8')
  if (bytes === 0) throw new AppError('INVALID_NAME', 'name must not be empty')
  if (bytes > MAX_NAME_BYTES)
    throw new AppError('INVALID_NAME', `name is longer than ${MAX_NAME_BYTES} bytes`)
  if (name.includes('/')) throw new AppError('INVALID_NAME', 'name must not contain "/"')
  if (name.includes('\0')) throw new AppError('INVALID_NAME', 'name must not contain NUL')
  if (name === '.' || name === '..') throw new AppError('INVALID_NAME', 'name must not be "." or ".."')
  // With the u flag a surrogate pair is one code point, so \p{Cs} only matches lone halves,
  // which have no UTF-8 encoding.
  if (LONE_SURROGATE.test(name)) throw new AppError('INVALID_NAME', 'name is not valid UTF-8')
  return name
}

/**
 * The key under which two sibling names are the same name. macOS and Windows file systems are
 * case-insensitive (and macOS also ignores the normalisation form), so a folder holding both
 * `Readme` and `README`, or `é` as one code point and as `e` + accent, could not be synced to
 * them: one would overwrite the other. Siblings are unique under this key, as in Dropbox; the
 * name keeps the case it was given. Lower case of NFC, the form Dropbox's `path_lower` uses.
 */
export function nameKey(name: string): string {
  return name.normalize('NFC').toLowerCase()
}

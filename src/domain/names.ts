import { AppError } from './errors.js'
import { CONTROL, INVISIBLE, LINE_SEPARATOR, LONE_SURROGATE } from './hidden-characters.js'

/** Contract: names are 1–255 bytes of UTF-8, with no `/`, no NUL, and not `.` or `..`. */
export const MAX_NAME_BYTES = 255
/**
 * Bidirectional controls (U+061C, U+200E, U+200F, U+202A–U+202E, U+2066–U+2069):
 * `invoice\u202efdp.exe` shows as `invoiceexe.pdf`. Named apart from other invisibles for
 * the message.
 */
const BIDI_CONTROL = /\p{Bidi_Control}/u
/** Zero-width characters that are never needed: two names that look the same, or a blank one. */
const ZERO_WIDTH = /[\u200b\u2060\ufeff]/u
/**
 * Variation selectors pick a glyph for the character before them: emoji need U+FE0F (`❤️`),
 * Japanese names U+E0100–U+E01EF (ideographic variation sequences), Mongolian U+180B–U+180F.
 */
const VARIATION_SELECTOR = /\p{Variation_Selector}/u
/**
 * A subdivision flag (`🏴󠁧󠁢󠁳󠁣󠁴󠁿`, Scotland): U+1F3F4 WAVING BLACK FLAG, then a subdivision id
 * (`gbsct`: lower-case letters and digits, 3–7 of them) spelled in tag characters, then
 * U+E007F CANCEL TAG (UTS #51). Tag characters anywhere else only hide text.
 */
const EMOJI_FLAG_TAGS = /\u{1F3F4}[\u{E0030}-\u{E0039}\u{E0061}-\u{E007A}]{3,7}\u{E007F}/gu
/**
 * ZERO WIDTH NON-JOINER and JOINER are needed inside words of some scripts (Persian
 * `می‌خواهم`, Indic conjuncts) and in emoji sequences (`👩‍💻`); elsewhere they only hide.
 */
const JOINERS = new Set(['\u200c', '\u200d'])
const WORD_CHARACTER = /[\p{L}\p{M}]/u
/** Scripts that never join with them, where a joiner would only make a look-alike name. */
const LOOKALIKE_SCRIPT = /[\p{Script=Latin}\p{Script=Greek}\p{Script=Cyrillic}\p{Script=Common}]/u
const EMOJI_PART = /\p{Extended_Pictographic}|\p{Emoji_Modifier}|\ufe0f/u
/** Windows devices (also with an extension, `nul.txt`): such a file cannot exist there. */
const WINDOWS_DEVICE = /^(con|prn|aux|nul|com[0-9¹²³]|lpt[0-9¹²³]|conin\$|conout\$|clock\$)$/i

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
  if (LONE_SURROGATE.test(name)) throw new AppError('INVALID_NAME', 'name is not valid UTF-8')
  if (CONTROL.test(name)) {
    throw new AppError(
      'INVALID_NAME',
      'name must not contain control characters (U+0000–U+001F, U+007F–U+009F)',
    )
  }
  if (LINE_SEPARATOR.test(name)) {
    throw new AppError('INVALID_NAME', 'name must not contain line or paragraph separators (U+2028, U+2029)')
  }
  if (BIDI_CONTROL.test(name)) {
    throw new AppError(
      'INVALID_NAME',
      'name must not contain bidirectional controls (U+061C, U+200E, U+200F, U+202A–U+202E, U+2066–U+2069)',
    )
  }
  // A flag's tags are read as the flag itself, so that a joiner after it is judged by the flag.
  const shown = name.replace(EMOJI_FLAG_TAGS, '\u{1F3F4}')
  if (ZERO_WIDTH.test(name) || hasStrayJoiner(shown)) {
    throw new AppError(
      'INVALID_NAME',
      'name must not contain zero-width characters (U+200B, U+2060, U+FEFF; U+200C and U+200D only inside a word of a script that joins with them, or an emoji)',
    )
  }
  if ([...shown].some(isHiddenFormatting)) {
    throw new AppError(
      'INVALID_NAME',
      'name must not contain invisible or formatting characters (Unicode format characters and default-ignorables, such as U+00AD, U+034F, U+180E, U+2061–U+2064, U+206A–U+206F, U+3164, U+FFF9–U+FFFB, tag characters outside an emoji flag; and U+2800); variation selectors are allowed',
    )
  }
  // Windows trims trailing spaces from the part before the extension when it looks for devices.
  const stem = name.split('.')[0]?.trimEnd() ?? ''
  if (WINDOWS_DEVICE.test(stem)) {
    throw new AppError(
      'INVALID_NAME',
      `"${stem}" is a device name on Windows (CON, PRN, AUX, NUL, COM0–COM9, LPT0–LPT9, CONIN$, CONOUT$, CLOCK$, with any extension)`,
    )
  }
  if (name.endsWith('.') || name.endsWith(' ')) {
    throw new AppError('INVALID_NAME', 'name must not end with a dot or a space (Windows cannot hold it)')
  }
  return name
}

/** Joiners are judged by their neighbours (`hasStrayJoiner`), variation selectors allowed. */
function isHiddenFormatting(char: string): boolean {
  return INVISIBLE.test(char) && !JOINERS.has(char) && !VARIATION_SELECTOR.test(char)
}

function hasStrayJoiner(name: string): boolean {
  const chars = [...name]
  return chars.some((char, i) => JOINERS.has(char) && !(joinsWith(chars[i - 1]) && joinsWith(chars[i + 1])))
}

function joinsWith(neighbour: string | undefined): boolean {
  if (neighbour === undefined) return false
  if (EMOJI_PART.test(neighbour)) return true
  return WORD_CHARACTER.test(neighbour) && !LOOKALIKE_SCRIPT.test(neighbour)
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

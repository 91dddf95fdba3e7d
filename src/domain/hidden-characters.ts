/**
 * Characters a person cannot see in text a server shows them (names, addresses), by Unicode
 * property rather than by list, so that characters added to a category later are covered too.
 * Each caller decides which of these a real value may still need (emoji need variation
 * selectors and joiners; an email address needs none).
 */

/** C0 controls (CR, LF, TAB, ESC...), DEL and the C1 controls U+0080–U+009F. */
export const CONTROL = /\p{Cc}/u

/** With the u flag a surrogate pair is one code point: this matches only a lone half, which has no UTF-8. */
export const LONE_SURROGATE = /\p{Cs}/u

/** U+2028 LINE SEPARATOR and U+2029 PARAGRAPH SEPARATOR: they break a line wherever they are shown. */
export const LINE_SEPARATOR = /[\p{Zl}\p{Zp}]/u

/**
 * Format characters (General_Category Cf: soft hyphen, bidi controls, invisible operators,
 * interlinear annotation, tag characters...), characters Unicode says to draw as nothing
 * (Default_Ignorable_Code_Point: U+034F, Hangul fillers U+3164 and U+FFA0, variation
 * selectors...), and U+2800 BRAILLE PATTERN BLANK, a letter-like blank that is neither but
 * is the usual way to make a name that shows as empty.
 */
export const INVISIBLE = /[\p{Cf}\p{Default_Ignorable_Code_Point}\u2800]/u

/** Whether `text` holds any character of the classes above. */
export function hasHiddenCharacter(text: string): boolean {
  return [CONTROL, LONE_SURROGATE, LINE_SEPARATOR, INVISIBLE].some((kind) => kind.test(text))
}

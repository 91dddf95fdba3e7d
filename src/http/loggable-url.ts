/** What a share link's token looks like: 32 random bytes in base64url (share-link-service.ts). */
const TOKEN_LENGTH = 43
const TOKEN_RUN = /[A-Za-z0-9_-]+/g
/** Path segments whose next segment is a link token, however the client wrote them. */
const SHARE_SEGMENT = /^shares?$/i
const HIDDEN = '***'

/**
 * A request URL as it may be written to the log: a share link's token is the key to what it
 * shares, so it is replaced, as are `token=` query parameters (the sync socket's is never
 * logged at all). The rest of the URL stays, so operators still see which route was hit.
 *
 * The router decodes percent-escapes and a client may write the path in many ways that reach
 * (or nearly reach) a link route: `/%73hare/<token>`, `/Share/<token>`, `/share//<token>`,
 * `/share/<token>;x`. So each segment is judged by its decoded form, and hidden whole when it
 * follows a `share`/`shares` segment (empty ones skipped) or holds anything shaped like a token.
 */
export function loggableUrl(url: string): string {
  const queryAt = url.search(/[?#]/)
  const path = queryAt < 0 ? url : url.slice(0, queryAt)
  const rest = queryAt < 0 ? '' : url.slice(queryAt)
  let afterShare = false
  const segments = path.split('/').map((segment) => {
    const decoded = decodeSafely(segment)
    if (decoded === '') return segment
    const hide = afterShare || holdsToken(decoded)
    afterShare = SHARE_SEGMENT.test(decoded.split(';')[0] ?? '')
    return hide ? HIDDEN : segment
  })
  const query = rest.replace(/([?&](?:access_)?token=)[^&#]*/gi, `$1${HIDDEN}`)
  return `${segments.join('/')}${hideTokens(query)}`
}

function holdsToken(text: string): boolean {
  return (text.match(TOKEN_RUN) ?? []).some((run) => run.length === TOKEN_LENGTH)
}

function hideTokens(text: string): string {
  return text.replace(TOKEN_RUN, (run) => (run.length === TOKEN_LENGTH ? HIDDEN : run))
}

/**
 * Percent-escapes decoded as bytes (ASCII is all a token or `share` can be), repeatedly, so a
 * double-encoded form is seen too; never throws on a malformed escape, unlike decodeURIComponent.
 */
function decodeSafely(segment: string): string {
  let text = segment
  for (let round = 0; round < 3 && text.includes('%'); round++) {
    const next = text.replace(/%([0-9A-Fa-f]{2})/g, (_, hex: string) =>
      String.fromCharCode(Number.parseInt(hex, 16)),
    )
    if (next === text) break
    text = next
  }
  return text
}

/**
 * A request URL as it may be written to the log: a share link's token is the key to what it
 * shares, so it is replaced, as are `token=` query parameters (the sync socket's is never
 * logged at all). The rest of the path stays, so operators still see which route was hit.
 */
export function loggableUrl(url: string): string {
  return url.replace(/(\/shares?\/)[^/?#]+/g, '$1***').replace(/([?&](?:access_)?token=)[^&#]*/gi, '$1***')
}

/** How often a condition is polled: often enough to add little to a test, rarely enough to cost nothing. */
const POLL_INTERVAL_MS = 20

/**
 * Waits until `condition()` is true, polling it; fails naming `what` after `timeoutMs`. The one
 * polling helper of the tests, for what a test cannot await directly (a file the server writes,
 * a message another node receives, a counter a request bumps after it has answered).
 */
export async function waitFor(
  condition: () => boolean | Promise<boolean>,
  what = 'the condition',
  timeoutMs = 10_000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`)
    await new Promise((resolve) => setTimeout(resolve, POLL_INTERVAL_MS))
  }
}

/** Runs `worker` over 0..count-1 with at most `concurrency` calls in flight. */
export async function forEachConcurrently(
  count: number,
  concurrency: number,
  worker: (index: number) => Promise<void>,
): Promise<void> {
  let next = 0
  const lanes = Array.from({ length: Math.min(concurrency, count) }, async () => {
    while (next < count) {
      const index = next++
      await worker(index)
    }
  })
  await Promise.all(lanes)
}

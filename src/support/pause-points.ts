/**
 * Named points in the storage paths where a test can hold an operation still, to run another
 * one into the gap: a second collector between a claim and its delete, a download while its
 * version is pruned, a collector while an upload declares its chunks. Races that a real
 * deployment meets after a VM pause or under load are then met every time, in a known order.
 *
 * Without a hook (always, outside tests) a point is a map lookup and no await.
 */
export type PausePoint =
  // Garbage collector: claim committed, copies deleted, rows forgotten.
  | 'gc.sweep.after-claim'
  | 'gc.sweep.after-blob-delete'
  | 'gc.sweep.after-row-delete'
  // Upload init: chunks classified inside the declaring transaction, not yet recorded.
  | 'upload.init.after-classify'
  // Chunk PUT: the copy is durable, its row not yet recorded.
  | 'chunk.put.before-row'
  // complete: the session read, its transaction not yet begun.
  | 'upload.complete.before-commit'
  // Download: the version found, its chunk list not read yet; then read, no byte sent yet.
  | 'download.before-plan'
  | 'download.after-plan'

type Hook = () => Promise<void>

const hooks = new Map<PausePoint, Hook>()

/** Runs the hook set for `name`, if any; callers `await` the result. */
export function pausePoint(name: PausePoint): Promise<void> | undefined {
  return hooks.size === 0 ? undefined : hooks.get(name)?.()
}

/** Sets the hook of a point (replacing any); answers a function that removes it. For tests. */
export function onPausePoint(name: PausePoint, hook: Hook): () => void {
  hooks.set(name, hook)
  return () => {
    if (hooks.get(name) === hook) hooks.delete(name)
  }
}

/**
 * Named points in the write, commit and sweep paths where the crash tests kill the process.
 *
 * A test starts a child process with `TESSERA_CRASH_AT=<name>`; when the child reaches that
 * point it sends itself SIGKILL, the one signal nothing can catch or clean up after, exactly
 * as a power cut or the OOM killer would end it. In every other process this is a no-op that
 * costs two string comparisons.
 */
export type CrashPoint =
  // Chunk write (adapters/disk): bytes in a temp file, fsynced, linked into place, dir fsynced.
  | 'blob.put.after-temp-write'
  | 'blob.put.after-fsync'
  | 'blob.put.after-link'
  | 'blob.put.after-dir-fsync'
  // Chunk PUT (services/uploads/chunk-receipt.ts): bytes durable, row not yet recorded / recorded.
  | 'chunk.put.before-row'
  | 'chunk.put.after-row'
  // complete: before the transaction, and after it commits but before the answer.
  | 'upload.complete.before-commit'
  | 'upload.complete.after-commit'
  // Purge and version pruning: references dropped.
  | 'trash.purge.after-commit'
  // Garbage collector sweep: claim committed, blob deleted, row deleted.
  | 'gc.sweep.after-claim'
  | 'gc.sweep.after-blob-delete'
  | 'gc.sweep.after-row-delete'

const armed = process.env.TESSERA_CRASH_AT
/**
 * With `TESSERA_STOP_AT=<name>` the process stops itself (SIGSTOP) at that point instead, once,
 * as a VM suspend or a debugger would freeze it; the test resumes it with SIGCONT whenever it
 * likes. The clock keeps running meanwhile, so a stopped collector wakes up past its grace.
 */
let stopAt = process.env.TESSERA_STOP_AT

export function crashPoint(name: CrashPoint): void {
  if (armed === name) process.kill(process.pid, 'SIGKILL')
  if (stopAt === name) {
    stopAt = undefined
    process.kill(process.pid, 'SIGSTOP')
  }
}

import type { BlobKey } from '../domain/blob-key.js'
import type { Clock } from '../domain/clock.js'
import type { MetadataStore } from '../ports/metadata-store.js'

/** Where a bad copy came to light. */
export type DamageSource = 'download' | 'scrub' | 'upload'

export interface DamageEvent extends BlobKey {
  source: DamageSource
  /** What was wrong: `missing`, or what the bytes hashed to. */
  problem: string
  /** True when this report marked the chunk; false when it was marked already, or is no longer that copy. */
  marked: boolean
}

/**
 * What happens when a stored copy turns out wrong or gone, wherever that is found: the chunk is
 * marked damaged (only while that copy is still its own, so a copy replaced or collected since
 * is nobody's fault), and the event goes to the operator (a log line and `/metrics`).
 *
 * A damaged chunk is shared by every file that contains it, so nothing here hides it: downloads
 * touching it fail, and uploads stop deduplicating against it, so the next upload of the bytes
 * replaces the copy (UploadService.putChunk).
 */
export class ChunkIntegrity {
  constructor(
    private readonly meta: MetadataStore,
    private readonly clock: Clock,
    private readonly onDamage: (event: DamageEvent) => void = () => {},
  ) {}

  /**
   * Reports a copy found wrong or gone, and answers what it was: `marked` by this call, damage
   * `known` already, or `stale`: a copy the chunk no longer uses (replaced by a repair, or
   * collected while a download of a version pruned meanwhile was reading it), which is nobody's
   * damage, so nothing is reported.
   */
  async damaged(copy: BlobKey, source: DamageSource, problem: string): Promise<'marked' | 'known' | 'stale'> {
    const marked = await this.meta.chunks.markDamaged(copy, this.clock())
    if (!marked) {
      const now = await this.meta.chunks.find(copy.hash)
      if (now?.state !== 'live' || now.generation !== copy.generation) return 'stale'
    }
    this.onDamage({ hash: copy.hash, generation: copy.generation, source, problem, marked })
    return marked ? 'marked' : 'known'
  }
}

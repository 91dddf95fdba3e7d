import type { BlobStore } from '../ports/blob-store.js'
import type { EventBus } from '../ports/event-bus.js'
import type { MetadataStore } from '../ports/metadata-store.js'

const READY_TIMEOUT_MS = 2_000

export type ReadinessCheck = 'metadata' | 'blobs' | 'bus'

/** Each check's failure, or null when it passed. */
export type ReadinessReport = Record<ReadinessCheck, Error | null>

/** The stores a request may need, each of which says whether it answers. */
export interface ReadinessProbes {
  meta: Pick<MetadataStore, 'ping'>
  blobs: Pick<BlobStore, 'ping'>
  bus: Pick<EventBus, 'ping'>
}

/**
 * Whether this node can serve: the metadata store, the blob store and the event bus each
 * answer within READY_TIMEOUT_MS. Without the bus this node still serves and its clients still
 * catch up from the journal, but changes made on other nodes reach its sockets late: not
 * ready, so operators see it.
 */
export async function checkReadiness(probes: ReadinessProbes): Promise<ReadinessReport> {
  return {
    metadata: await probe(() => probes.meta.ping()),
    blobs: await probe(() => probes.blobs.ping()),
    bus: await probe(() => probes.bus.ping()),
  }
}

/** Runs a check with a deadline; answers its error, or null when it passed. */
async function probe(check: () => Promise<void>): Promise<Error | null> {
  let timer: NodeJS.Timeout | undefined
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no answer within ${READY_TIMEOUT_MS} ms`)), READY_TIMEOUT_MS)
  })
  try {
    await Promise.race([check(), timeout])
    return null
  } catch (error) {
    return error instanceof Error ? error : new Error(String(error))
  } finally {
    clearTimeout(timer)
  }
}

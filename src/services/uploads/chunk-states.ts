import type { PlannedChunk } from '../../domain/chunk-plan.js'
import { AppError } from '../../domain/errors.js'
import type { ChunkHash } from '../../domain/hashes.js'
import type { UploadChunkState } from '../../domain/model.js'
import type { Repositories } from '../../ports/metadata-store.js'

/**
 * Which chunks need nothing (held, and already in a file the user can read), which need a
 * proof (held, but never shown to be the user's: the "Dropship" hole), and which are needed.
 */
export async function classifyChunks(
  repos: Repositories,
  userId: string,
  chunks: readonly PlannedChunk[],
): Promise<Map<ChunkHash, UploadChunkState>> {
  const distinct = [...new Set(chunks.map((chunk) => chunk.hash))]
  const stored = await repos.chunks.sound(distinct)
  // A chunk's size is a fact of its bytes: a declaration that says otherwise would make a file
  // whose size, quota charge and ETag describe bytes that do not exist.
  for (const chunk of chunks) {
    const size = stored.get(chunk.hash)
    if (size !== undefined && size !== chunk.size) {
      throw new AppError(
        'CHUNK_SIZE_MISMATCH',
        `chunk ${chunk.index} is declared ${chunk.size} bytes, but the chunk with its hash has ${size}`,
        { index: chunk.index },
      )
    }
  }
  const readable =
    stored.size === 0 ? new Set<ChunkHash>() : await repos.chunks.readableBy(userId, [...stored.keys()])
  const states = new Map<ChunkHash, UploadChunkState>()
  for (const hash of distinct) {
    states.set(hash, !stored.has(hash) ? 'needed' : readable.has(hash) ? 'ok' : 'prove')
  }
  return states
}

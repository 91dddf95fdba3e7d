import { randomFillSync } from 'node:crypto'
import { open } from 'node:fs/promises'
import { MiB } from './timing.js'

/** Writes `bytes` of random data (incompressible, never deduplicated) in 4 MiB writes. */
export async function writeRandomFile(path: string, bytes: number): Promise<void> {
  const buffer = Buffer.allocUnsafe(4 * MiB)
  const handle = await open(path, 'w')
  try {
    for (let written = 0; written < bytes; ) {
      const length = Math.min(buffer.length, bytes - written)
      randomFillSync(buffer, 0, length)
      await handle.write(buffer, 0, length)
      written += length
    }
  } finally {
    await handle.close()
  }
}

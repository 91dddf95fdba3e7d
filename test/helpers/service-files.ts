import { createHash } from 'node:crypto'
import { Readable } from 'node:stream'
import { afterEach, beforeEach } from 'vitest'
import type { NodeRecord, User } from '../../src/domain/model.js'
import type { AppServices } from '../../src/services/app-services.js'
import { openServiceFixture, type ServiceFixture } from './service-fixture.js'

/**
 * Stores `content` as the file `name` (in `folderId`, else the root) through the upload service,
 * in one chunk, as a client would: a new file, or with `baseVersion` a new version of it.
 * For service unit tests that need files to act on.
 */
export async function storeFile(
  services: AppServices,
  user: User,
  name: string,
  content: string,
  options: { folderId?: string; baseVersion?: number } = {},
): Promise<NodeRecord> {
  const bytes = Buffer.from(content)
  const hash = createHash('sha256').update(bytes).digest('hex')
  const view = await services.uploads.init(user, {
    filename: name,
    size: bytes.length,
    folderId: options.folderId,
    chunkHashes: bytes.length === 0 ? [] : [hash],
    chunkSizes: bytes.length === 0 ? [] : [bytes.length],
    baseVersion: options.baseVersion,
  })
  for (const index of [...view.chunksNeeded, ...view.chunksToProve]) {
    await services.uploads.putChunk({
      user,
      uploadId: view.uploadId,
      index,
      hash,
      contentLength: bytes.length,
      body: Readable.from([bytes]),
    })
  }
  return (await services.uploads.complete(user, view.uploadId)).file
}

/** A service fixture with one account in it, made anew for each test. */
export interface ServiceScene {
  fx: ServiceFixture
  services: AppServices
  ann: User
  /** A folder of ann's (in `parentId`, else her root). */
  mkdir(name: string, parentId?: string | null): Promise<NodeRecord>
  /** What ann's quota counts now. */
  usedBytes(): Promise<number>
}

/** Registers the hooks that open a fresh `ServiceScene` before each test and close it after. */
export function serviceScene(): ServiceScene {
  const scene = {
    mkdir: async (name: string, parentId?: string | null) =>
      (await scene.services.folders.create(scene.ann, { name, parentId })).node,
    usedBytes: async () => (await scene.services.auth.currentUser(scene.ann.id)).usedBytes,
  } as ServiceScene
  beforeEach(async () => {
    scene.fx = await openServiceFixture()
    scene.services = scene.fx.services
    scene.ann = await scene.fx.user('ann')
  })
  afterEach(() => scene.fx.close())
  return scene
}

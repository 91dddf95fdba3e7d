import type { Clock } from '../domain/clock.js'
import { notFound } from '../domain/errors.js'
import type { NodeRecord, User, VersionRecord } from '../domain/model.js'
import type { MetadataStore } from '../ports/metadata-store.js'
import { locate, locateLocked } from './access.js'
import { appendVersion } from './append-version.js'
import type { ChangeJournal } from './change-journal.js'
import type { VersionHistory } from './version-history.js'

/** A file's history: list its versions, and restore one as a new version. */
export class VersionService {
  constructor(
    private readonly meta: MetadataStore,
    private readonly journal: ChangeJournal,
    private readonly clock: Clock,
    private readonly history: VersionHistory,
  ) {}

  async list(user: User, fileId: string): Promise<VersionRecord[]> {
    const { node: file } = await locate(this.meta, user, fileId, 'read', 'file')
    return this.meta.versions.list(file.id)
  }

  /**
   * Makes the content of version `number` current again as a NEW version: history is never
   * rewritten, so the version being replaced can itself be restored later. The chunks are
   * shared with the old version, so this stores no bytes.
   */
  async restore(user: User, fileId: string, number: number): Promise<NodeRecord> {
    return this.journal.transaction(user.id, async (tx, log) => {
      const { node: file } = await locateLocked(tx, user, fileId, 'write', 'file')
      const source = await tx.versions.find(file.id, number)
      if (!source) throw notFound('version not found')
      const chunks = await tx.versions.chunks(source.id)
      const restored = await appendVersion(
        tx,
        this.history,
        { kind: 'existing', file },
        { size: source.size, contentHash: source.contentHash, chunks, authorId: user.id, at: this.clock() },
      )
      log.record(restored, 'update')
      return restored
    })
  }
}

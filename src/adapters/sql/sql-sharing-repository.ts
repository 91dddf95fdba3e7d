import type { Kysely, Selectable } from 'kysely'
import type { FolderMember, Millis, NodeRecord, ShareLink } from '../../domain/model.js'
import type {
  PasswordAttempt,
  PasswordAttemptLimits,
  SharedFolder,
  SharingRepository,
} from '../../ports/metadata/sharing-repository.js'
import { atomically } from './atomic.js'
import { batches, VALUES_PER_STATEMENT } from './batches.js'
import { toNode } from './node-rows.js'
import type { Database, FolderMembersTable, NodesTable, ShareLinksTable } from './schema.js'

export class SqlSharingRepository implements SharingRepository {
  constructor(private readonly db: Kysely<Database>) {}

  async putMember(member: FolderMember): Promise<boolean> {
    const existing = await this.db
      .selectFrom('folder_members')
      .select('role')
      .where('folder_id', '=', member.folderId)
      .where('user_id', '=', member.userId)
      .executeTakeFirst()
    await this.db
      .insertInto('folder_members')
      .values({
        folder_id: member.folderId,
        user_id: member.userId,
        role: member.role,
        added_by: member.addedBy,
        created_at: member.createdAt,
      })
      .onConflict((oc) => oc.columns(['folder_id', 'user_id']).doUpdateSet({ role: member.role }))
      .execute()
    return existing === undefined
  }

  async removeMember(folderId: string, userId: string): Promise<boolean> {
    const result = await this.db
      .deleteFrom('folder_members')
      .where('folder_id', '=', folderId)
      .where('user_id', '=', userId)
      .executeTakeFirst()
    return Number(result.numDeletedRows) > 0
  }

  async members(folderId: string): Promise<FolderMember[]> {
    const rows = await this.db
      .selectFrom('folder_members')
      .selectAll()
      .where('folder_id', '=', folderId)
      .orderBy('created_at')
      .orderBy('user_id')
      .execute()
    return rows.map(toMember)
  }

  async memberships(userId: string, folderIds: readonly string[]): Promise<FolderMember[]> {
    if (folderIds.length === 0) return []
    const found: FolderMember[] = []
    for (const batch of batches(folderIds, VALUES_PER_STATEMENT)) {
      const rows = await this.db
        .selectFrom('folder_members')
        .selectAll()
        .where('user_id', '=', userId)
        .where('folder_id', 'in', batch)
        .execute()
      found.push(...rows.map(toMember))
    }
    return found
  }

  async membersOfAny(folderIds: readonly string[]): Promise<FolderMember[]> {
    const found: FolderMember[] = []
    for (const batch of batches(folderIds, VALUES_PER_STATEMENT)) {
      const rows = await this.db
        .selectFrom('folder_members')
        .selectAll()
        .where('folder_id', 'in', batch)
        .execute()
      found.push(...rows.map(toMember))
    }
    return found
  }

  async sharedWith(userId: string): Promise<SharedFolder[]> {
    const rows = await this.db
      .selectFrom('folder_members')
      .innerJoin('nodes', 'nodes.id', 'folder_members.folder_id')
      .innerJoin('users', 'users.id', 'nodes.owner_id')
      .selectAll('nodes')
      .select([
        'folder_members.folder_id as m_folder_id',
        'folder_members.user_id as m_user_id',
        'folder_members.role as m_role',
        'folder_members.added_by as m_added_by',
        'folder_members.created_at as m_created_at',
        'users.email as owner_email',
      ])
      .where('folder_members.user_id', '=', userId)
      .where('nodes.deleted_at', 'is', null)
      .orderBy('folder_members.created_at', 'desc')
      .orderBy('nodes.id')
      .execute()
    return rows.map((row) => ({
      member: toMember({
        folder_id: row.m_folder_id,
        user_id: row.m_user_id,
        role: row.m_role,
        added_by: row.m_added_by,
        created_at: row.m_created_at,
      }),
      folder: toNode(row as unknown as Selectable<NodesTable>),
      ownerEmail: row.owner_email,
    }))
  }

  async insertLink(link: ShareLink, tokenHash: string): Promise<void> {
    await this.db
      .insertInto('share_links')
      .values({
        id: link.id,
        token: link.token,
        token_hash: tokenHash,
        owner_id: link.ownerId,
        node_id: link.nodeId,
        password_hash: link.passwordHash,
        expires_at: link.expiresAt,
        created_at: link.createdAt,
        revoked_at: link.revokedAt,
        downloads: link.downloads,
      })
      .execute()
  }

  async findLink(tokenHash: string): Promise<ShareLink | null> {
    const row = await this.db
      .selectFrom('share_links')
      .selectAll()
      .where('token_hash', '=', tokenHash)
      .executeTakeFirst()
    return row ? toLink(row) : null
  }

  async linksOf(ownerId: string): Promise<{ link: ShareLink; node: NodeRecord }[]> {
    const rows = await this.db
      .selectFrom('share_links')
      .innerJoin('nodes', 'nodes.id', 'share_links.node_id')
      .selectAll('nodes')
      .select([
        'share_links.id as l_id',
        'share_links.token as l_token',
        'share_links.token_hash as l_token_hash',
        'share_links.owner_id as l_owner_id',
        'share_links.node_id as l_node_id',
        'share_links.password_hash as l_password_hash',
        'share_links.expires_at as l_expires_at',
        'share_links.created_at as l_created_at',
        'share_links.revoked_at as l_revoked_at',
        'share_links.downloads as l_downloads',
        'share_links.failed_attempts as l_failed_attempts',
        'share_links.attempts_since as l_attempts_since',
      ])
      .where('share_links.owner_id', '=', ownerId)
      .where('share_links.revoked_at', 'is', null)
      .orderBy('share_links.created_at', 'desc')
      .orderBy('share_links.id')
      .execute()
    return rows.map((row) => ({
      link: toLink({
        id: row.l_id,
        token: row.l_token,
        token_hash: row.l_token_hash,
        owner_id: row.l_owner_id,
        node_id: row.l_node_id,
        password_hash: row.l_password_hash,
        expires_at: row.l_expires_at,
        created_at: row.l_created_at,
        revoked_at: row.l_revoked_at,
        downloads: row.l_downloads,
        failed_attempts: row.l_failed_attempts,
        attempts_since: row.l_attempts_since,
      }),
      node: toNode(row as unknown as Selectable<NodesTable>),
    }))
  }

  async revokeLink(ownerId: string, linkId: string, now: Millis): Promise<boolean> {
    const result = await this.db
      .updateTable('share_links')
      .set({ revoked_at: now })
      .where('id', '=', linkId)
      .where('owner_id', '=', ownerId)
      .where('revoked_at', 'is', null)
      .executeTakeFirst()
    return Number(result.numUpdatedRows) > 0
  }

  async countDownload(linkId: string): Promise<void> {
    await this.db
      .updateTable('share_links')
      .set((eb) => ({ downloads: eb('downloads', '+', 1) }))
      .where('id', '=', linkId)
      .execute()
  }

  async reservePasswordAttempt(
    linkId: string,
    address: string,
    now: Millis,
    limits: PasswordAttemptLimits,
  ): Promise<PasswordAttempt> {
    const granted = await this.db
      .transaction()
      .execute(async (tx) => {
        const windowStart = await takeLinkSlot(tx, linkId, now, limits)
        if (windowStart === null) return null
        if (!(await takeAddressSlot(tx, linkId, address, windowStart, limits.perAddress))) {
          // Undoes the link's slot with the transaction: the address has had its share.
          throw new AddressRefused()
        }
        return windowStart
      })
      .catch((error: unknown) => {
        if (error instanceof AddressRefused) return null
        throw error
      })
    if (granted !== null) return { granted: true, windowStart: granted }
    const row = await this.db
      .selectFrom('share_links')
      .select('attempts_since')
      .where('id', '=', linkId)
      .executeTakeFirst()
    return { granted: false, windowEndsAt: Number(row?.attempts_since ?? now) + limits.windowMs }
  }

  async refundPasswordAttempt(linkId: string, address: string, windowStart: Millis): Promise<void> {
    await atomically(this.db, async (tx) => {
      await tx
        .updateTable('share_links')
        .set((eb) => ({ failed_attempts: eb('failed_attempts', '-', 1) }))
        .where('id', '=', linkId)
        .where('attempts_since', '=', windowStart)
        .where('failed_attempts', '>', 0)
        .execute()
      await tx
        .updateTable('share_link_attempts')
        .set((eb) => ({ attempts: eb('attempts', '-', 1) }))
        .where('link_id', '=', linkId)
        .where('address', '=', address)
        .where('window_start', '=', windowStart)
        .where('attempts', '>', 0)
        .execute()
    })
  }
}

class AddressRefused extends Error {}

/**
 * One conditional UPDATE: it starts a new window when the last is over, or counts one more
 * slot while fewer than `perLink` are taken. On PostgreSQL the row lock serialises concurrent
 * callers and each re-checks the condition against the row the one before it left (READ
 * COMMITTED re-evaluates an UPDATE's WHERE after waiting); SQLite has one writer at a time.
 * Answers the window's start, or null when the link has no slot left (or does not exist).
 */
async function takeLinkSlot(
  tx: Kysely<Database>,
  linkId: string,
  now: Millis,
  limits: PasswordAttemptLimits,
): Promise<Millis | null> {
  const lastWindowOver = now - limits.windowMs
  const row = await tx
    .updateTable('share_links')
    .set((eb) => ({
      failed_attempts: eb
        .case()
        .when('attempts_since', '<=', lastWindowOver)
        .then(1)
        .else(eb('failed_attempts', '+', 1))
        .end(),
      attempts_since: eb
        .case()
        .when('attempts_since', '<=', lastWindowOver)
        .then(now)
        .else(eb.ref('attempts_since'))
        .end(),
    }))
    .where('id', '=', linkId)
    .where((eb) =>
      eb.or([eb('attempts_since', '<=', lastWindowOver), eb('failed_attempts', '<', limits.perLink)]),
    )
    .returning(['attempts_since', 'failed_attempts'])
    .executeTakeFirst()
  if (!row) return null
  const windowStart = Number(row.attempts_since)
  if (Number(row.failed_attempts) === 1) {
    // The first slot of a window: the addresses' shares of earlier windows are spent.
    await tx
      .deleteFrom('share_link_attempts')
      .where('link_id', '=', linkId)
      .where('window_start', '<', windowStart)
      .execute()
  }
  return windowStart
}

/** The address's slot in the link's window, in one upsert that holds while under `perAddress`. */
async function takeAddressSlot(
  tx: Kysely<Database>,
  linkId: string,
  address: string,
  windowStart: Millis,
  perAddress: number,
): Promise<boolean> {
  const row = await tx
    .insertInto('share_link_attempts')
    .values({ link_id: linkId, address, window_start: windowStart, attempts: 1 })
    .onConflict((oc) =>
      oc
        .columns(['link_id', 'address'])
        .doUpdateSet((eb) => ({
          attempts: eb
            .case()
            .when('share_link_attempts.window_start', '=', windowStart)
            .then(eb('share_link_attempts.attempts', '+', 1))
            .else(1)
            .end(),
          window_start: windowStart,
        }))
        .where((eb) =>
          eb.or([
            eb('share_link_attempts.window_start', '<>', windowStart),
            eb('share_link_attempts.attempts', '<', perAddress),
          ]),
        ),
    )
    .returning('attempts')
    .executeTakeFirst()
  return row !== undefined
}

function toMember(row: Selectable<FolderMembersTable>): FolderMember {
  return {
    folderId: row.folder_id,
    userId: row.user_id,
    role: row.role,
    addedBy: row.added_by,
    createdAt: Number(row.created_at),
  }
}

function toLink(row: Selectable<ShareLinksTable>): ShareLink {
  return {
    id: row.id,
    token: row.token,
    ownerId: row.owner_id,
    nodeId: row.node_id,
    passwordHash: row.password_hash,
    expiresAt: row.expires_at === null ? null : Number(row.expires_at),
    createdAt: Number(row.created_at),
    revokedAt: row.revoked_at === null ? null : Number(row.revoked_at),
    downloads: Number(row.downloads),
  }
}

import type { Clock } from '../domain/clock.js'
import { invalid, notFound } from '../domain/errors.js'
import type { FolderMember, MemberRole, User } from '../domain/model.js'
import type { SharedFolder } from '../ports/metadata/sharing-repository.js'
import type { MetadataStore, Repositories } from '../ports/metadata-store.js'
import { locate, locateLocked, mayWriteFolder } from './access.js'
import type { ChangeJournal } from './change-journal.js'

export interface MemberView {
  userId: string
  email: string
  role: MemberRole | 'owner'
  createdAt: number
}

/** An invitation to a folder, or a new role for a member of it. */
export interface AddMemberCommand {
  folderId: string
  /** The invitee's address, as `normalizeEmail` gives it (as accounts are registered with). */
  email: string
  role: MemberRole
}

/** Who leaves a folder: the member removed by its owner, or the caller leaving. */
export interface RemoveMemberCommand {
  folderId: string
  userId: string
}

/**
 * Folders shared between users (API.md, Sharing): the owner adds members by email as viewer or
 * editor, and removes them; a member may also leave. What a member may do is decided by
 * services/access.ts on every request, from the rows written here, so a removal takes effect
 * at the next request (and the next journal entry: they get none after it).
 */
export class MemberService {
  constructor(
    private readonly meta: MetadataStore,
    private readonly journal: ChangeJournal,
    private readonly clock: Clock,
  ) {}

  /** Adds (201: `created`) or changes the role of (200) a member; the owner only. */
  async add(
    owner: User,
    { folderId, email, role }: AddMemberCommand,
  ): Promise<{ member: MemberView; created: boolean }> {
    return this.journal.transaction(owner.id, async (tx, log) => {
      const { node: folder } = await locateLocked(tx, owner, folderId, 'own', 'folder')
      if (folder.parentId === null) throw invalid('the root folder cannot be shared; share a folder in it')
      const invitee = await tx.users.findByEmail(email)
      // Telling whether an address has an account is no more than the invite itself tells.
      if (!invitee) throw notFound('no account has this email address')
      if (invitee.id === owner.id) throw invalid('you own this folder already')
      const member: FolderMember = {
        folderId: folder.id,
        userId: invitee.id,
        role,
        addedBy: owner.id,
        createdAt: this.clock(),
      }
      const created = await tx.sharing.putMember(member)
      // An editor made a viewer can no longer upload here: their sessions end with the change.
      if (!created && member.role === 'viewer') await this.endLostSessions(tx, invitee.id, folder.ownerId)
      // The folder appears in the new member's journal, at the top of their view.
      if (created) log.recordFor(invitee.id, folder, 'create')
      const stored = (await tx.sharing.members(folder.id)).find((m) => m.userId === invitee.id) ?? member
      return { member: view(stored, invitee.email), created }
    })
  }

  /** The owner first, then the members; for the owner and the members. */
  async list(user: User, folderId: string): Promise<MemberView[]> {
    const { node: folder } = await locate(this.meta, user, folderId, 'read', 'folder')
    const owner = await this.meta.users.findById(folder.ownerId)
    const members = await this.meta.sharing.members(folder.id)
    const views: MemberView[] = owner
      ? [{ userId: owner.id, email: owner.email, role: 'owner', createdAt: folder.createdAt }]
      : []
    for (const member of members) {
      const account = await this.meta.users.findById(member.userId)
      if (account) views.push(view(member, account.email))
    }
    return views
  }

  /** The owner removes anyone; a member may remove themselves (leave). 404 for a non-member. */
  async remove(user: User, { folderId, userId: memberId }: RemoveMemberCommand): Promise<void> {
    await this.journal.transaction(user.id, async (tx, log) => {
      const leaving = memberId === user.id
      const { node: folder } = await locateLocked(tx, user, folderId, leaving ? 'read' : 'own', 'folder')
      if (!(await tx.sharing.removeMember(folder.id, memberId))) throw notFound('no such member')
      await this.endLostSessions(tx, memberId, folder.ownerId)
      // Their devices drop the folder; nothing more of it reaches their journal.
      log.recordFor(memberId, folder, 'delete')
    })
  }

  /**
   * Ends the user's open upload sessions into the owner's files that they may no longer upload
   * into (after a removal, a leave or a demotion; a session into a folder still shared with them
   * through another membership stays), so that what the sessions reserved stops holding the
   * owner's quota at once. In the caller's transaction, under the owner's tree lock; the chunks
   * those sessions alone named are the collector's, like an abort's.
   */
  private async endLostSessions(tx: Repositories, userId: string, ownerId: string): Promise<void> {
    const sessions = await tx.uploads.openInto(userId, ownerId, this.clock())
    const reachable = new Map<string, boolean>()
    for (const session of sessions) {
      let may = reachable.get(session.folderId)
      if (may === undefined) {
        may = await mayWriteFolder(tx, userId, session.folderId)
        reachable.set(session.folderId, may)
      }
      if (!may) await tx.uploads.delete(session.id)
    }
  }

  /** Live folders other users share with the caller, most recently shared first. */
  sharedWithMe(user: User): Promise<SharedFolder[]> {
    return this.meta.sharing.sharedWith(user.id)
  }
}

function view(member: FolderMember, email: string): MemberView {
  return { userId: member.userId, email, role: member.role, createdAt: member.createdAt }
}

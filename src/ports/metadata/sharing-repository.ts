import type { FolderMember, Millis, NodeRecord, ShareLink } from '../../domain/model.js'

/** A folder shared with a user, as `GET /shared-with-me` lists it. */
export interface SharedFolder {
  member: FolderMember
  folder: NodeRecord
  ownerEmail: string
}

/** Folder members and public links (API.md, Sharing; migration 0006). */
export interface SharingRepository {
  /** Adds a member, or changes a member's role; answers true when they were not one before. */
  putMember(member: FolderMember): Promise<boolean>
  /** Answers whether there was such a member. */
  removeMember(folderId: string, userId: string): Promise<boolean>
  /** A folder's members, oldest first. */
  members(folderId: string): Promise<FolderMember[]>
  /** The memberships of `userId` among these folders (a node's lineage, for access checks). */
  memberships(userId: string, folderIds: readonly string[]): Promise<FolderMember[]>
  /** Every member of any of these folders (who sees a change made below them). */
  membersOfAny(folderIds: readonly string[]): Promise<FolderMember[]>
  /** Live folders shared with the user, most recently shared first. */
  sharedWith(userId: string): Promise<SharedFolder[]>

  insertLink(link: ShareLink, tokenHash: string): Promise<void>
  /** The link with this token hash, revoked or expired too (the caller decides), or null. */
  findLink(tokenHash: string): Promise<ShareLink | null>
  /** The owner's links that are not revoked, newest first, with their items (any state). */
  linksOf(ownerId: string): Promise<{ link: ShareLink; node: NodeRecord }[]>
  /** Answers whether a link of this owner was live and is revoked now. */
  revokeLink(ownerId: string, linkId: string, now: Millis): Promise<boolean>
  countDownload(linkId: string): Promise<void>
  /**
   * Takes one password-attempt slot on the link for `address`, before the password is checked,
   * or refuses: granted only while fewer than `perLink` slots of the link's current window are
   * taken, and fewer than `perAddress` of them by this address. A window lasts `windowMs` from
   * the first attempt after the last one ended. Atomic in the database, so concurrent requests
   * on any number of API nodes never take more slots than that.
   */
  reservePasswordAttempt(
    linkId: string,
    address: string,
    now: Millis,
    limits: PasswordAttemptLimits,
  ): Promise<PasswordAttempt>
  /**
   * Gives back a slot taken in the window that started at `windowStart` (the password was
   * right). Nothing when that window is over: a newer window's count is not touched.
   */
  refundPasswordAttempt(linkId: string, address: string, windowStart: Millis): Promise<void>
}

export interface PasswordAttemptLimits {
  windowMs: number
  perLink: number
  perAddress: number
}

/** A slot, in the window that started at `windowStart`; or when the full window ends. */
export type PasswordAttempt =
  | { granted: true; windowStart: Millis }
  | { granted: false; windowEndsAt: Millis }

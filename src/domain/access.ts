import type { MemberRole } from './model.js'

/** What a caller is to a node: its owner, or a member of a folder above it (or of it). */
export type Role = 'owner' | MemberRole

/**
 * What an operation needs:
 * - `read`: see, list, download (viewers and up);
 * - `write`: create, upload, rename, move and delete inside a shared folder (editors and up);
 * - `own`: share further (links, members), and act on a shared folder itself (owner only).
 */
export type Need = 'read' | 'write' | 'own'

const RANK: Record<Role, number> = { viewer: 1, editor: 2, owner: 3 }
const REQUIRED: Record<Need, number> = { read: 1, write: 2, own: 3 }

export const allows = (role: Role, need: Need): boolean => RANK[role] >= REQUIRED[need]

/** The stronger of two roles: a member of two nested shared folders has the better of both. */
export const stronger = (a: Role, b: Role): Role => (RANK[a] >= RANK[b] ? a : b)

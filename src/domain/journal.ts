import type { Millis, NodeKind, NodeRecord } from './model.js'

/**
 * What happened to a file or folder (API.md, Sync):
 * - `create`: a new file or folder (a conflicted copy too);
 * - `update`: a new version of a file (an upload, or a restore of an old version);
 * - `move`: renamed and/or moved; `name` and `parentId` are the new ones;
 * - `delete`: to the trash; for a folder, with everything inside;
 * - `restore`: back from the trash (possibly under another name or in the root); for a
 *   folder, with everything that went with it, which the client lists.
 * Purging an item already in the trash changes nothing a client shows, so it has no entry.
 */
export type ChangeAction = 'create' | 'update' | 'delete' | 'move' | 'restore'

/** A change as a service records it, before the journal gives it a position. */
export interface NewChange {
  action: ChangeAction
  kind: NodeKind
  nodeId: string
  name: string
  /**
   * The folder it is in, as the journal's user sees it: null for their root (API.md's
   * `folderId`), so that presenting an entry needs nothing but the entry.
   */
  parentId: string | null
  /** The file's version after the change; null for folders. */
  version: number | null
  size: number
  contentHash: string | null
  /** Who made the change. */
  actorId: string
  at: Millis
}

/** One entry of one user's journal. */
export interface JournalEntry extends NewChange {
  /** Whose journal it is in. */
  userId: string
  /** Its position: 1, 2, 3... per user, in commit order. */
  seq: number
}

/** What a node looks like to the journal after `action`, for a user whose root is `rootId`. */
export function changeOf(
  node: NodeRecord,
  action: ChangeAction,
  context: { actorId: string; rootId: string; at: Millis },
): NewChange {
  const { actorId, rootId, at } = context
  return {
    action,
    kind: node.kind,
    nodeId: node.id,
    name: node.name,
    parentId: node.parentId === rootId ? null : node.parentId,
    version: node.currentVersion,
    size: node.size,
    contentHash: node.contentHash,
    actorId,
    at,
  }
}

const CURSOR_PREFIX = 'j1.'

/**
 * Cursors are opaque to clients (API.md): a versioned wrapper around the position, so that the
 * encoding can change without old cursors being misread.
 */
export function encodeJournalCursor(seq: number): string {
  return `${CURSOR_PREFIX}${seq.toString(36)}`
}

/** The position in a cursor from `encodeJournalCursor`; null when it is not one. */
export function decodeJournalCursor(cursor: string): number | null {
  if (!cursor.startsWith(CURSOR_PREFIX)) return null
  const digits = cursor.slice(CURSOR_PREFIX.length)
  if (!/^[0-9a-z]{1,11}$/.test(digits)) return null
  const seq = Number.parseInt(digits, 36)
  return Number.isSafeInteger(seq) ? seq : null
}

/**
 * An entry as clients see it, over HTTP (`GET /sync/changes`), over the WebSocket and on the
 * event bus (API.md, Sync): the change fields, plus `type`, `userId` and `fileId` of the push
 * message. Timestamps are ISO 8601, as everywhere in the API.
 */
export function changeMessage(entry: JournalEntry) {
  return {
    type: 'change' as const,
    cursor: encodeJournalCursor(entry.seq),
    userId: entry.userId,
    action: entry.action,
    kind: entry.kind,
    id: entry.nodeId,
    fileId: entry.kind === 'file' ? entry.nodeId : null,
    name: entry.name,
    folderId: entry.parentId,
    version: entry.version,
    size: entry.size,
    contentHash: entry.contentHash,
    actorId: entry.actorId,
    timestamp: new Date(entry.at).toISOString(),
  }
}

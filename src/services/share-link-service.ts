import { randomBytes } from 'node:crypto'
import { addressKey } from '../domain/client-address.js'
import type { Clock } from '../domain/clock.js'
import { AppError, invalid, notFound } from '../domain/errors.js'
import { newId } from '../domain/ids.js'
import type { Millis, NodeKind, NodeRecord, ShareLink, User } from '../domain/model.js'
import type { MetadataStore } from '../ports/metadata-store.js'
import { locate } from './access.js'
import { hashToken } from './auth-service.js'
import type { ChunkReader, DownloadPlan } from './chunk-reader.js'
import { decodeCursor, encodeCursor, parseLimit } from './paging.js'
import type { PasswordHasher } from './password-hasher.js'

export interface ShareLinkOptions {
  /** Passwords a link checks per window (a right one is given back); then 429 until it ends. */
  passwordAttempts: number
  /** The share of those one client address may use (its IPv6 /64: `addressKey`). */
  passwordAttemptsPerAddress: number
  passwordWindowMs: Millis
}

/** Who opens a link: the password they sent (X-Share-Password) and the address they came from. */
export interface Visitor {
  password: string | undefined
  address: string
}

/** 256 bits: twice the contract's minimum; a guess is hopeless at any request rate. */
const TOKEN_BYTES = 32
const TOKEN = /^[A-Za-z0-9_-]{43}$/
/** The longest password a link takes; a longer one sent by a visitor is wrong without hashing. */
export const MAX_LINK_PASSWORD_LENGTH = 1024

/** A new link to an item of the caller's own. */
export interface CreateLinkCommand {
  nodeId: string
  /** What the route says the item is: a file link to a folder id is 404, and so on. */
  kind: NodeKind
  /** Null: anyone with the token opens it. */
  password: string | null
  /** Null: it does not expire; else a time in the future. */
  expiresAt: Millis | null
}

/** Which page of a folder link a visitor asks for, as the query string gave it. */
export interface LinkViewQuery {
  /** A folder at or below the linked one (absent or empty: the linked folder itself). */
  folderId?: string
  limit?: string
  cursor?: string
}

/** A link opened by its visitor: the link and the live item it names. */
export interface OpenedLink {
  link: ShareLink
  node: NodeRecord
}

export type LinkView =
  | { kind: 'file'; link: ShareLink; file: NodeRecord }
  | {
      kind: 'folder'
      link: ShareLink
      folder: NodeRecord
      /** From the linked folder, which is `/`. */
      path: string
      items: NodeRecord[]
      nextCursor: string | null
    }

/**
 * Public links to files and folders (API.md, Sharing). Anyone with the token (and the password,
 * if the link has one) may see the item as it is now, and for a folder everything below it,
 * and nothing else. A link stops working when it is revoked, expires, or its item is deleted;
 * it works again if the item is restored.
 */
export class ShareLinkService {
  constructor(
    private readonly meta: MetadataStore,
    private readonly passwords: PasswordHasher,
    private readonly clock: Clock,
    private readonly reader: ChunkReader,
    private readonly options: ShareLinkOptions,
  ) {}

  /** A new link to a file or folder of the caller's own (members do not share further). */
  async create(user: User, { nodeId, kind, password, expiresAt }: CreateLinkCommand): Promise<ShareLink> {
    const { node } = await locate(this.meta, user, nodeId, 'own', kind)
    if (node.parentId === null) throw invalid('the root folder cannot be shared; share a folder in it')
    if (expiresAt !== null && expiresAt <= this.clock()) throw invalid('expiresAt must be in the future')
    const link: ShareLink = {
      id: newId(),
      token: randomBytes(TOKEN_BYTES).toString('base64url'),
      ownerId: user.id,
      nodeId: node.id,
      passwordHash: password === null ? null : await this.passwords.hash(password),
      expiresAt,
      createdAt: this.clock(),
      revokedAt: null,
      downloads: 0,
    }
    await this.meta.sharing.insertLink(link, hashToken(link.token))
    return link
  }

  /** The caller's links that are not revoked (expired ones too, so they can be seen), newest first. */
  async list(user: User): Promise<{ link: ShareLink; node: NodeRecord; expired: boolean }[]> {
    const now = this.clock()
    const links = await this.meta.sharing.linksOf(user.id)
    return links.map((entry) => ({
      ...entry,
      expired: entry.link.expiresAt !== null && entry.link.expiresAt <= now,
    }))
  }

  async revoke(user: User, token: string): Promise<void> {
    const link = await this.#find(token)
    if (
      !link ||
      link.ownerId !== user.id ||
      !(await this.meta.sharing.revokeLink(user.id, link.id, this.clock()))
    ) {
      throw notFound('no such link')
    }
  }

  /**
   * What a visitor sees: the file, or a page of the folder (or of `folderId` inside it).
   * Revoked, expired, unknown and deleted are all 404; a password wrong or missing is 401.
   */
  async view(token: string, visitor: Visitor, query: LinkViewQuery): Promise<LinkView> {
    const { link, node } = await this.open(token, visitor)
    if (node.kind === 'file') return { kind: 'file', link, file: node }
    const limit = parseLimit(query.limit)
    const after = decodeCursor(query.cursor, ([kind, name]) =>
      (kind === 'file' || kind === 'folder') && typeof name === 'string'
        ? { kind: kind as NodeKind, name }
        : undefined,
    )
    const { target: folder, path } = await this.#inside(node, query.folderId, 'folder')
    const rows = await this.meta.nodes.listLiveChildren(folder.id, { after, limit: limit + 1 })
    const items = rows.slice(0, limit)
    const last = items.at(-1)
    const nextCursor = rows.length > limit && last ? encodeCursor([last.kind, last.name]) : null
    return { kind: 'folder', link, folder, path, items, nextCursor }
  }

  /** A download through a link: the linked file, or `fileId` inside the linked folder. */
  async planDownload(
    token: string,
    visitor: Visitor,
    { fileId }: { fileId?: string },
  ): Promise<{ plan: DownloadPlan; countDownload: () => Promise<void> }> {
    const { link, node } = await this.open(token, visitor)
    let file = node
    if (node.kind === 'folder') {
      if (fileId === undefined || fileId === '') throw invalid('fileId is required for a folder link')
      file = (await this.#inside(node, fileId, 'file')).target
    } else if (fileId !== undefined && fileId !== '' && fileId !== node.id) {
      throw notFound('file not found')
    }
    const version =
      file.currentVersion === null ? null : await this.meta.versions.find(file.id, file.currentVersion)
    if (!version) throw notFound('file not found')
    return {
      plan: this.reader.plan(file, version),
      countDownload: () => this.meta.sharing.countDownload(link.id),
    }
  }

  /** The link and its live item, once its password (if any) is right. */
  async open(token: string, visitor: Visitor): Promise<OpenedLink> {
    const gone = () => notFound('this link does not exist, has expired or was revoked')
    const link = await this.#find(token)
    const now = this.clock()
    if (!link || link.revokedAt !== null || (link.expiresAt !== null && link.expiresAt <= now)) throw gone()
    // The item as it is now; in the trash (itself or with a folder above it) the link rests.
    const lineage = await this.meta.nodes.lineage(link.nodeId)
    const node = lineage[0]
    if (!node || !lineage.every((ancestor) => ancestor.deletedAt === null)) throw gone()
    if (link.passwordHash !== null) await this.#checkPassword(link, link.passwordHash, visitor, now)
    return { link, node }
  }

  /** The link a token names (by its hash), in any state; null for what is not even a token. */
  #find(token: string): Promise<ShareLink | null> {
    return TOKEN.test(token) ? this.meta.sharing.findLink(hashToken(token)) : Promise.resolve(null)
  }

  /**
   * Checks a link's password, at most `passwordAttempts` times per window whatever the concurrency
   * and however many API nodes: a slot is taken in the database before argon2 runs (we cannot
   * know a password is right before checking it) and given back when it was right, so only
   * wrong ones use the budget up. One address may take only `passwordAttemptsPerAddress` of the slots,
   * so a single guesser cannot lock the link's other visitors out.
   */
  async #checkPassword(link: ShareLink, hash: string, visitor: Visitor, now: Millis): Promise<void> {
    const { password } = visitor
    if (password === undefined || password === '') {
      throw new AppError('SHARE_PASSWORD_REQUIRED', 'this link needs its password (X-Share-Password)')
    }
    // Never right, and costs no hashing: refused without taking a slot.
    if (password.length > MAX_LINK_PASSWORD_LENGTH) throw wrongPassword()
    const address = addressKey(visitor.address)
    const attempt = await this.meta.sharing.reservePasswordAttempt(link.id, address, now, {
      windowMs: this.options.passwordWindowMs,
      perLink: this.options.passwordAttempts,
      perAddress: this.options.passwordAttemptsPerAddress,
    })
    if (!attempt.granted) {
      throw new AppError('RATE_LIMITED', 'too many wrong passwords for this link; try again later', {
        retryAfterSeconds: Math.max(1, Math.ceil((attempt.windowEndsAt - now) / 1000)),
      })
    }
    // argon2's verify compares in constant time.
    if (!(await this.passwords.verify(hash, password))) throw wrongPassword()
    await this.meta.sharing.refundPasswordAttempt(link.id, address, attempt.windowStart)
  }

  /** A live node of `kind` at or below the linked folder, with its path from it; else 404. */
  async #inside(
    root: NodeRecord,
    id: string | undefined,
    kind: NodeKind,
  ): Promise<{ target: NodeRecord; path: string }> {
    if ((id === undefined || id === '') && kind === 'folder') return { target: root, path: '/' }
    const lineage = id !== undefined && id.length <= 64 ? await this.meta.nodes.lineage(id) : []
    const at = lineage.findIndex((ancestor) => ancestor.id === root.id)
    const target = lineage[0]
    if (!target || at < 0 || target.kind !== kind || lineage.slice(0, at).some((n) => n.deletedAt !== null)) {
      throw notFound(`${kind} not found in this link`)
    }
    const names = lineage
      .slice(0, at)
      .map((n) => n.name)
      .reverse()
    return { target, path: `/${names.join('/')}` }
  }
}

const wrongPassword = () => new AppError('SHARE_PASSWORD_REQUIRED', 'wrong password for this link')

import type { FastifyRequest } from 'fastify'
import { invalid, notFound } from '../domain/errors.js'
import type { User } from '../domain/model.js'
import type { BlobStore } from '../ports/blob-store.js'
import type { EventBus } from '../ports/event-bus.js'
import type { MetadataStore } from '../ports/metadata-store.js'
import type { Authenticated, AuthService } from '../services/auth-service.js'
import type { FileService } from '../services/file-service.js'
import type { FolderService } from '../services/folder-service.js'
import type { GarbageCollector } from '../services/garbage-collector.js'
import type { MemberService } from '../services/member-service.js'
import type { Scrubber } from '../services/scrubber.js'
import type { ShareLinkService } from '../services/share-link-service.js'
import type { SyncHub } from '../services/sync-hub.js'
import type { SyncService } from '../services/sync-service.js'
import type { TrashService } from '../services/trash-service.js'
import type { UploadService } from '../services/upload-service.js'
import type { VersionHistory } from '../services/version-history.js'
import type { VersionService } from '../services/version-service.js'
import type { Sha256Pool } from '../support/sha256-pool.js'

/** Everything the routes use, built once in main.ts (or by a test). */
export interface AppServices {
  auth: AuthService
  folders: FolderService
  files: FileService
  uploads: UploadService
  versions: VersionService
  trash: TrashService
  members: MemberService
  links: ShareLinkService
  sync: SyncService
  hub: SyncHub
  bus: EventBus
  history: VersionHistory
  gc: GarbageCollector
  scrubber: Scrubber
  blobs: BlobStore
  meta: MetadataStore
  /** SHA-256 worker threads shared by downloads and scrub; closed with the server. */
  hashers: Sha256Pool
}

declare module 'fastify' {
  interface FastifyRequest {
    auth: Authenticated | null
  }
}

/** The signed-in user; routes registered behind the auth hook always have one. */
export function userOf(request: FastifyRequest): User {
  if (!request.auth) throw new Error('route reached without authentication')
  return request.auth.user
}

/** A JSON body that must be an object (possibly empty when the route takes no fields). */
export function objectBody(request: FastifyRequest): Record<string, unknown> {
  const body = request.body ?? {}
  if (typeof body !== 'object' || Array.isArray(body)) throw invalid('the body must be a JSON object')
  return body as Record<string, unknown>
}

export function param(request: FastifyRequest, name: string): string {
  return (request.params as Record<string, string>)[name] ?? ''
}

/** A version number from the path: a malformed one names no version, so it is 404 too. */
export function versionParam(request: FastifyRequest): number {
  const raw = param(request, 'version')
  if (!/^[1-9]\d{0,8}$/.test(raw)) throw notFound('version not found')
  return Number(raw)
}

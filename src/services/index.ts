import type { Clock } from '../domain/clock.js'
import type { AppServices } from '../http/context.js'
import type { BlobStore } from '../ports/blob-store.js'
import type { MetadataStore } from '../ports/metadata-store.js'
import { type AuthOptions, AuthService } from './auth-service.js'
import { FileService } from './file-service.js'
import { FolderService } from './folder-service.js'
import { PasswordHasher, type PasswordHashing } from './password-hasher.js'
import { UploadService } from './upload-service.js'

export interface ServiceOptions extends AuthOptions {
  uploadSessionTtlMs: number
  passwordHashing?: PasswordHashing
}

/** Wires the use cases to the stores; main.ts and the tests both build the app through here. */
export function buildServices(
  meta: MetadataStore,
  blobs: BlobStore,
  clock: Clock,
  options: ServiceOptions,
): AppServices {
  return {
    auth: new AuthService(meta, new PasswordHasher(options.passwordHashing), clock, options),
    folders: new FolderService(meta, clock),
    files: new FileService(meta, clock),
    uploads: new UploadService(meta, blobs, clock, { sessionTtlMs: options.uploadSessionTtlMs }),
    blobs,
    meta,
  }
}

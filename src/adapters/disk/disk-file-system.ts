import type { Stats } from 'node:fs'
import { access, type FileHandle, link, lstat, mkdir, open, readdir, stat, unlink } from 'node:fs/promises'

/**
 * Every file system call DiskBlobStore makes, so that tests can make any of them fail as a sick
 * disk does (EIO, ENOSPC). Writes, fsyncs, reads and closes go through the FileHandle that `open`
 * returns, so a test wraps that too.
 */
export interface DiskFileSystem {
  open(path: string, flags: string): Promise<FileHandle>
  link(existingPath: string, newPath: string): Promise<void>
  mkdir(path: string, options: { recursive: true }): Promise<string | undefined>
  unlink(path: string): Promise<void>
  stat(path: string): Promise<Stats>
  lstat(path: string): Promise<Stats>
  readdir(path: string): Promise<string[]>
  access(path: string, mode: number): Promise<void>
}

/** node:fs/promises itself, unwrapped: the seam costs production nothing but a property lookup. */
export const nodeFileSystem: DiskFileSystem = { open, link, mkdir, unlink, stat, lstat, readdir, access }

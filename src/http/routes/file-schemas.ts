import { z } from 'zod'
import { nameField, targetFolderField } from './folder-schemas.js'
import { optionalParameter, pageQuery } from './paging-schemas.js'

/**
 * GET /files: a page of a folder (absent or empty: the caller's root). A malformed folder id
 * names no folder, as in a path: the service answers 404.
 */
export const listFilesQuery = z.object({ folderId: optionalParameter, ...pageQuery })

/** PATCH /files/:id: rename and/or move (a null folderId moves to the root). */
export const updateFileBody = z.object({ name: nameField, folderId: targetFolderField('folderId') })

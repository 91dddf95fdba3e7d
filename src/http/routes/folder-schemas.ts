import { z } from 'zod'

/**
 * A name is checked whole by the domain (`normalizeName`), which answers INVALID_NAME for any
 * bad name, one that is not a string included: the schema lets it through as it came.
 */
export const nameField = z.unknown().optional()

/**
 * A folder to put something in: a folder id, or null for the caller's root. Whether the string
 * is an id at all, and one the caller may use, is for the service (400, or 404 like any id).
 */
export const targetFolderField = (field: string) =>
  z
    .string({ error: `${field} must be a folder id or null` })
    .nullable()
    .optional()

/** POST /folders: absent and null parentId alike mean the caller's root. */
export const createFolderBody = z.object({ name: nameField, parentId: targetFolderField('parentId') })

/** PATCH /folders/:id: an absent field is left as it is (a null parentId moves to the root). */
export const updateFolderBody = createFolderBody

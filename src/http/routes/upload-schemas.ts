import { z } from 'zod'

/**
 * The bodies of the upload routes (API.md, Upload). Each checks the types it can on its own, with
 * the message the domain gives for the same fault; what only the domain can judge (a name, each
 * declared hash and chunk size, an index against the session's chunk count) is passed on as sent
 * and answered there, with the codes and messages clients have always had (INVALID_NAME for a
 * name, the offending `index` in a declaration's 400).
 */

const SIZE = 'size must be a non-negative integer'
const BASE_VERSION = 'baseVersion must be a positive integer'

/** `POST /upload/init`. */
export const uploadInitBody = z.object({
  // Absent or not a string alike: the domain's INVALID_NAME ("name must be a string").
  filename: z.unknown().optional(),
  // In the order the fields were always checked, so that of two faults the same one is answered.
  size: z.number({ error: SIZE }).int({ error: SIZE }).min(0, { error: SIZE }),
  chunkHashes: z.array(z.unknown(), { error: 'chunkHashes must be an array of SHA-256 hex strings' }),
  chunkSizes: z.array(z.unknown(), { error: 'chunkSizes must be an array of integers' }).nullish(),
  // Its range is the domain's (declaration.ts): a type fault alone is answered here.
  baseVersion: z.number({ error: BASE_VERSION }).nullish(),
  folderId: z.string({ error: 'folderId must be a folder id or null' }).nullish(),
})

/**
 * Any JSON object, handed on as parsed. Not `z.record`: it copies the entries into a new object,
 * where a `"__proto__"` key would set the prototype instead of being an entry (and so escape
 * the index check that refuses it).
 */
const jsonObject = (error: string) =>
  z.custom<Readonly<Record<string, unknown>>>(
    (value) => typeof value === 'object' && value !== null && !Array.isArray(value),
    { error },
  )

/** `POST /upload/:id/prove`: `{"<index>": "<hex HMAC-SHA256>"}`, each entry checked against the session. */
export const uploadProveBody = z.object({
  proofs: jsonObject('proofs must be an object of "<index>": "<hex HMAC-SHA256>"'),
})

/** `PUT /files/content`: the file's place and name in the query, its bytes as the body. */
export const fileContentQuery = z.object({
  folderId: z.string({ error: 'folderId must be a folder id' }).optional(),
  // Absent alike: the domain's INVALID_NAME.
  name: z.unknown().optional(),
  baseVersion: z
    .string()
    .regex(/^[1-9]\d{0,15}$/, { error: BASE_VERSION })
    .transform(Number)
    .optional(),
})

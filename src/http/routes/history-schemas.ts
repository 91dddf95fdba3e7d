import { z } from 'zod'
import { pageQuery } from './paging-schemas.js'

/** GET /trash: a page of the trash. */
export const trashQuery = z.object(pageQuery)

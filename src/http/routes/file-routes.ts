import type { FastifyInstance } from 'fastify'
import type { AppServices } from '../../services/app-services.js'
import type { ListingPage } from '../../services/listing-cache.js'
import { param, userOf, versionParam } from '../context.js'
import { sendDownload } from '../download.js'
import { presentFile, presentFolder, presentListItem } from '../presenters.js'
import { bodyOf, queryOf } from '../request-input.js'
import { listFilesQuery, updateFileBody } from './file-schemas.js'

const presentedPages = new WeakMap<ListingPage, string>()

/** `"items":[...],"nextCursor":...` of a page, computed once per (cached) page object. */
function pageJson(page: ListingPage): string {
  let json = presentedPages.get(page)
  if (json === undefined) {
    json = `"items":${JSON.stringify(page.items.map(presentListItem))},"nextCursor":${JSON.stringify(page.nextCursor)}`
    presentedPages.set(page, json)
  }
  return json
}

export function fileRoutes(app: FastifyInstance, { services }: { services: AppServices }) {
  app.get('/files', async (request, reply) => {
    const user = userOf(request)
    const listing = await services.files.list(user, queryOf(request, listFilesQuery))
    const { folder, path, shareRootId, page } = listing
    // Built by hand around the page's memoised JSON: a cached page is presented only once.
    const body = `{"folder":${JSON.stringify(presentFolder(folder, path, user, shareRootId))},${pageJson(page)}}`
    return reply.type('application/json; charset=utf-8').send(body)
  })

  app.get('/files/:id', async (request) => {
    const user = userOf(request)
    return presentFile(await services.files.get(user, param(request, 'id')), user)
  })

  app.get('/files/:id/download', async (request, reply) => {
    const plan = await services.files.planDownload(userOf(request), param(request, 'id'))
    return sendDownload(request, reply, plan)
  })

  app.get('/files/:id/versions/:version/download', async (request, reply) => {
    const plan = await services.files.planDownload(
      userOf(request),
      param(request, 'id'),
      versionParam(request),
    )
    return sendDownload(request, reply, plan)
  })

  app.patch('/files/:id', async (request) => {
    const user = userOf(request)
    const file = await services.files.update(user, param(request, 'id'), bodyOf(request, updateFileBody))
    return presentFile(file, user)
  })

  app.delete('/files/:id', async (request, reply) => {
    await services.files.delete(userOf(request), param(request, 'id'))
    return reply.code(204).send()
  })
}

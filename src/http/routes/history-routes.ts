import type { FastifyInstance } from 'fastify'
import type { AppServices } from '../../services/app-services.js'
import { param, userOf, versionParam } from '../context.js'
import { presentFile, presentFolder, presentTrashItem, presentVersion } from '../presenters.js'
import { queryOf } from '../request-input.js'
import { trashQuery } from './history-schemas.js'

/** Versions and trash (API.md, "Versions and trash"). */
export function historyRoutes(app: FastifyInstance, { services }: { services: AppServices }) {
  app.get('/files/:id/versions', async (request) => {
    const versions = await services.versions.list(userOf(request), param(request, 'id'))
    return { versions: versions.map(presentVersion) }
  })

  app.post('/files/:id/versions/:version/restore', async (request) => {
    const user = userOf(request)
    const file = await services.versions.restore(user, param(request, 'id'), versionParam(request))
    return presentFile(file, user)
  })

  app.get('/trash', async (request) => {
    const user = userOf(request)
    const { items, nextCursor } = await services.trash.list(user, queryOf(request, trashQuery))
    return { items: items.map((item) => presentTrashItem(item, user)), nextCursor }
  })

  app.post('/trash/:id/restore', async (request) => {
    const user = userOf(request)
    const restored = await services.trash.restore(user, param(request, 'id'))
    if (restored.kind === 'file') return { type: 'file', ...presentFile(restored.node, user) }
    return { type: 'folder', ...presentFolder(restored.node, restored.path, user) }
  })

  app.delete('/trash/:id', async (request, reply) => {
    await services.trash.purge(userOf(request), param(request, 'id'))
    return reply.code(204).send()
  })
}

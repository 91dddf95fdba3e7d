import type { FastifyInstance } from 'fastify'
import type { AppServices } from '../../services/app-services.js'
import { objectBody, param, userOf } from '../context.js'
import { presentFolder } from '../presenters.js'

export function folderRoutes(app: FastifyInstance, { services }: { services: AppServices }) {
  app.post('/folders', async (request, reply) => {
    const user = userOf(request)
    const { name, parentId } = objectBody(request)
    const { node, path, shareRootId } = await services.folders.create(user, { name, parentId })
    return reply.code(201).send(presentFolder(node, path, user, shareRootId))
  })

  app.get('/folders/:id', async (request) => {
    const user = userOf(request)
    const { node, path, shareRootId } = await services.folders.get(user, param(request, 'id'))
    return presentFolder(node, path, user, shareRootId)
  })

  app.patch('/folders/:id', async (request) => {
    const user = userOf(request)
    const { node, path, shareRootId } = await services.folders.update(
      user,
      param(request, 'id'),
      objectBody(request),
    )
    return presentFolder(node, path, user, shareRootId)
  })

  app.delete('/folders/:id', async (request, reply) => {
    await services.folders.delete(userOf(request), param(request, 'id'))
    return reply.code(204).send()
  })
}

import type { FastifyInstance } from 'fastify'
import type { AppServices } from '../../services/app-services.js'
import { param, userOf } from '../context.js'
import { presentFolder } from '../presenters.js'
import { bodyOf } from '../request-input.js'
import { createFolderBody, updateFolderBody } from './folder-schemas.js'

export function folderRoutes(app: FastifyInstance, { services }: { services: AppServices }) {
  app.post('/folders', async (request, reply) => {
    const user = userOf(request)
    const command = bodyOf(request, createFolderBody)
    const { node, path, shareRootId } = await services.folders.create(user, command)
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
      bodyOf(request, updateFolderBody),
    )
    return presentFolder(node, path, user, shareRootId)
  })

  app.delete('/folders/:id', async (request, reply) => {
    await services.folders.delete(userOf(request), param(request, 'id'))
    return reply.code(204).send()
  })
}

import type { FastifyInstance } from 'fastify'
import { MAX_DECLARATION_BYTES } from '../../domain/chunk-plan.js'
import type { AppServices } from '../../services/app-services.js'
import type { UploadSessionView } from '../../services/uploads/upload-service.js'
import { chunkUploadOf, fileUploadOf } from '../chunk-body.js'
import { param, userOf } from '../context.js'
import { presentFile, presentIso } from '../presenters.js'
import { bodyOf, queryOf } from '../request-input.js'
import { fileContentQuery, uploadInitBody, uploadProveBody } from './upload-schemas.js'

const presentSession = (session: UploadSessionView) => ({
  ...session,
  expiresAt: presentIso(session.expiresAt),
})

export function uploadRoutes(app: FastifyInstance, { services }: { services: AppServices }) {
  const { uploads } = services

  // A 10 GiB file declares 2,560 hashes (~170 KB of JSON); the limit fits MAX_CHUNKS of them.
  app.post('/upload/init', { bodyLimit: MAX_DECLARATION_BYTES }, async (request, reply) => {
    const session = await uploads.init(userOf(request), bodyOf(request, uploadInitBody))
    return reply.code(201).send(presentSession(session))
  })

  app.post('/upload/:id/check', async (request) =>
    presentSession(await uploads.check(userOf(request), param(request, 'id'))),
  )

  app.post('/upload/:id/prove', async (request) => {
    const { proofs } = bodyOf(request, uploadProveBody)
    return presentSession(await uploads.prove(userOf(request), param(request, 'id'), proofs))
  })

  app.post('/upload/:id/complete', async (request, reply) => {
    const user = userOf(request)
    const { file, conflict } = await uploads.complete(user, param(request, 'id'))
    return reply.code(201).send({ file: presentFile(file, user), conflict })
  })

  app.delete('/upload/:id', async (request, reply) => {
    await uploads.abort(userOf(request), param(request, 'id'))
    return reply.code(204).send()
  })

  // The chunk body is raw bytes streamed straight to the blob store, whatever its
  // Content-Type: this scope replaces every body parser with one that reads nothing and hands
  // the handler the body stream (watched for idleness: request-bodies.ts).
  app.register(async (raw) => {
    raw.removeAllContentTypeParsers()
    raw.addContentTypeParser('*', (_request, payload, done) => done(null, payload))
    raw.put('/upload/:id/chunk/:index', async (request) => uploads.putChunk(chunkUploadOf(request)))
    // A small file whole, in one request (README, API extensions).
    raw.put('/files/content', async (request, reply) => {
      const user = userOf(request)
      const command = fileUploadOf(request, queryOf(request, fileContentQuery))
      const { file, conflict } = await uploads.putFile(command)
      return reply.code(201).send({ file: presentFile(file, user), conflict })
    })
  })
}

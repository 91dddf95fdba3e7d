import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import type { NodeKind, NodeRecord, ShareLink } from '../../domain/model.js'
import type { AppServices } from '../../services/app-services.js'
import type { MemberView } from '../../services/member-service.js'
import type { LinkView, Visitor } from '../../services/share-link-service.js'
import { param, userOf } from '../context.js'
import { sendDownload } from '../download.js'
import { presentIso, presentListItem } from '../presenters.js'
import { bodyOf, queryOf } from '../request-input.js'
import { addMemberBody, createLinkBody, linkDownloadQuery, linkViewQuery } from './share-schemas.js'

export interface ShareRouteOptions {
  services: AppServices
  /** Where link URLs point: `<base>/share/<token>` (the API root by default: `/api/v1`). */
  linkBase(request: FastifyRequest): string
  /** Requests per minute per address on the public link routes (password guessing, scraping). */
  shareRateLimitPerMinute: number
}

const PASSWORD_HEADER = 'x-share-password'

/** Links and members (API.md, Sharing). The anonymous side is `/share/:token`. */
export function shareRoutes(app: FastifyInstance, options: ShareRouteOptions) {
  ownerLinkRoutes(app, options)
  publicLinkRoutes(app, options)
  memberRoutes(app, options.services)
}

/** The owner's side of links: create, list, revoke. */
function ownerLinkRoutes(app: FastifyInstance, { services, linkBase }: ShareRouteOptions) {
  const present = (request: FastifyRequest, link: ShareLink) => presentLink(linkBase(request), link)

  const createLink = (kind: NodeKind) => async (request: FastifyRequest, reply: FastifyReply) => {
    const input = bodyOf(request, createLinkBody)
    const link = await services.links.create(userOf(request), {
      ...input,
      nodeId: param(request, 'id'),
      kind,
    })
    return reply.code(201).send({ ...present(request, link), type: kind, itemId: link.nodeId })
  }
  app.post('/files/:id/share', createLink('file'))
  app.post('/folders/:id/share', createLink('folder'))

  app.get('/shares', async (request) => {
    const links = await services.links.list(userOf(request))
    return {
      shares: links.map(({ link, node, expired }) => ({
        ...present(request, link),
        type: node.kind,
        itemId: node.id,
        name: node.name,
        downloads: link.downloads,
        expired,
        /** False while the item is in the trash: the link rests until it is restored. */
        available: node.deletedAt === null,
      })),
    }
  })

  app.delete('/shares/:token', async (request, reply) => {
    await services.links.revoke(userOf(request), param(request, 'token'))
    return reply.code(204).send()
  })
}

/** The visitor's side of links: no account, a budget of requests per address. */
function publicLinkRoutes(app: FastifyInstance, { services, shareRateLimitPerMinute }: ShareRouteOptions) {
  const anonymous = {
    config: { public: true, addressLimit: { bucket: 'share', perMinute: shareRateLimitPerMinute } },
  }

  app.get('/share/:token', anonymous, async (request) => {
    const query = queryOf(request, linkViewQuery)
    return presentView(await services.links.view(param(request, 'token'), visitorOf(request), query))
  })

  app.get('/share/:token/download', anonymous, async (request, reply) => {
    const query = queryOf(request, linkDownloadQuery)
    const { plan, countDownload } = await services.links.planDownload(
      param(request, 'token'),
      visitorOf(request),
      query,
    )
    // A download counts once the whole file went out: a GET answered 200, or 206 for a range
    // from the first byte to the last. Not HEAD, a 304, any shorter range (`bytes=0-0` is how
    // clients probe for range support), or a transfer cut off ('finish' is never emitted then).
    reply.raw.once('finish', () => {
      if (request.method === 'GET' && sentWholeFile(reply)) {
        countDownload().catch((error) => request.log.error({ err: error }, 'counting a link download failed'))
      }
    })
    return sendDownload(request, reply, plan)
  })
}

/** Members of a shared folder, and the folders shared with the caller. */
function memberRoutes(app: FastifyInstance, services: AppServices) {
  app.post('/folders/:id/members', async (request, reply) => {
    const input = bodyOf(request, addMemberBody)
    const { member, created } = await services.members.add(userOf(request), {
      ...input,
      folderId: param(request, 'id'),
    })
    return reply.code(created ? 201 : 200).send(presentMember(member))
  })

  app.get('/folders/:id/members', async (request) => ({
    members: (await services.members.list(userOf(request), param(request, 'id'))).map(presentMember),
  }))

  app.delete('/folders/:id/members/:userId', async (request, reply) => {
    const command = { folderId: param(request, 'id'), userId: param(request, 'userId') }
    await services.members.remove(userOf(request), command)
    return reply.code(204).send()
  })

  app.get('/shared-with-me', async (request) => {
    const shared = await services.members.sharedWithMe(userOf(request))
    return {
      items: shared.map(({ member, folder, ownerEmail }) => ({
        type: 'folder' as const,
        id: folder.id,
        name: folder.name,
        role: member.role,
        ownerId: folder.ownerId,
        ownerEmail,
        sharedAt: presentIso(member.createdAt),
        updatedAt: presentIso(folder.updatedAt),
      })),
    }
  })
}

/** Who opens a link. request.ip is the socket's address, or X-Forwarded-For's under TRUST_PROXY. */
function visitorOf(request: FastifyRequest): Visitor {
  const value = request.headers[PASSWORD_HEADER]
  return { password: typeof value === 'string' ? value : undefined, address: request.ip }
}

function sentWholeFile(reply: FastifyReply): boolean {
  if (reply.statusCode === 200) return true
  if (reply.statusCode !== 206) return false
  const range = /^bytes 0-(\d+)\/(\d+)$/.exec(String(reply.getHeader('content-range') ?? ''))
  return range !== null && Number(range[1]) + 1 === Number(range[2])
}

function presentLink(base: string, link: ShareLink) {
  return {
    token: link.token,
    url: `${base}/share/${link.token}`,
    expiresAt: link.expiresAt === null ? null : presentIso(link.expiresAt),
    hasPassword: link.passwordHash !== null,
    createdAt: presentIso(link.createdAt),
  }
}

const presentMember = (member: MemberView) => ({
  userId: member.userId,
  email: member.email,
  role: member.role,
  createdAt: presentIso(member.createdAt),
})

/** What a visitor of a link sees: no owner, no ids outside the link, no paths above it. */
function presentView(view: LinkView) {
  const expiresAt = view.link.expiresAt === null ? null : presentIso(view.link.expiresAt)
  if (view.kind === 'file') return { type: 'file', file: presentSharedFile(view.file), expiresAt }
  return {
    type: 'folder',
    folder: { id: view.folder.id, name: view.folder.name, path: view.path },
    items: view.items.map(presentListItem),
    nextCursor: view.nextCursor,
    expiresAt,
  }
}

const presentSharedFile = (file: NodeRecord) => ({
  id: file.id,
  name: file.name,
  size: file.size,
  version: file.currentVersion,
  contentHash: file.contentHash,
  updatedAt: presentIso(file.updatedAt),
})

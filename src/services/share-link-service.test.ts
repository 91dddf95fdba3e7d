import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { openServiceFixture, type ServiceFixture } from '../../test/helpers/service-fixture.js'
import type { User } from '../domain/model.js'

const HOUR = 3_600_000

describe('ShareLinkService', () => {
  let fx: ServiceFixture
  let owner: User
  beforeEach(async () => {
    fx = await openServiceFixture()
    owner = await fx.user('owner')
  })
  afterEach(() => fx.close())

  const folder = async (name: string, parentId?: string) =>
    (await fx.services.folders.create(owner, { name, parentId })).node
  const linkTo = (nodeId: string, options: { password?: string; expiresAt?: number } = {}) =>
    fx.services.links.create(owner, {
      nodeId,
      kind: 'folder',
      password: options.password ?? null,
      expiresAt: options.expiresAt ?? null,
    })
  const anyone = { password: undefined, address: '192.0.2.1' }

  it('shows a folder link page by page, and folders inside it with their path', async () => {
    const shared = await folder('shared')
    for (const name of ['a', 'b', 'c']) await folder(name, shared.id)
    const { token } = await linkTo(shared.id)

    const first = await fx.services.links.view(token, anyone, { limit: '2' })
    if (first.kind !== 'folder') throw new Error('a folder link shows a folder')
    expect(first.items.map((n) => n.name)).toEqual(['a', 'b'])
    const rest = await fx.services.links.view(token, anyone, {
      limit: '2',
      cursor: first.nextCursor ?? undefined,
    })
    if (rest.kind !== 'folder') throw new Error('a folder link shows a folder')
    expect([rest.items.map((n) => n.name), rest.nextCursor]).toEqual([['c'], null])

    const inner = first.items[0]!
    const inside = await fx.services.links.view(token, anyone, { folderId: inner.id })
    expect(inside).toMatchObject({ kind: 'folder', path: '/a' })
    const outside = await folder('private')
    await expect(fx.services.links.view(token, anyone, { folderId: outside.id })).rejects.toMatchObject({
      code: 'NOT_FOUND',
    })
  })

  it('refuses an expiry in the past and the root folder; an expired or revoked link is 404', async () => {
    const shared = await folder('shared')
    await expect(linkTo(shared.id, { expiresAt: fx.now() })).rejects.toMatchObject({
      code: 'INVALID_REQUEST',
      message: 'expiresAt must be in the future',
    })
    await expect(linkTo(owner.rootFolderId)).rejects.toMatchObject({ code: 'INVALID_REQUEST' })

    const expiring = await linkTo(shared.id, { expiresAt: fx.now() + HOUR })
    const revoked = await linkTo(shared.id)
    await fx.services.links.revoke(owner, revoked.token)
    const stranger = await fx.user('stranger')
    await expect(fx.services.links.revoke(stranger, expiring.token)).rejects.toMatchObject({
      code: 'NOT_FOUND',
    })
    fx.advance(HOUR)
    for (const { token } of [expiring, revoked]) {
      await expect(fx.services.links.view(token, anyone, {})).rejects.toMatchObject({ code: 'NOT_FOUND' })
    }
    // The owner still sees the expired one (marked so), not the revoked one.
    const listed = await fx.services.links.list(owner)
    expect(listed.map((l) => [l.link.token, l.expired])).toEqual([[expiring.token, true]])
  })

  it('asks for the password; right ones give their attempt back, wrong ones use the budget up', async () => {
    const { token } = await linkTo((await folder('secret')).id, { password: 'open sesame' })
    const from = (password: string | undefined) => ({ password, address: '198.51.100.7' })
    const open = (password: string | undefined) => fx.services.links.open(token, from(password))
    await expect(open(undefined)).rejects.toMatchObject({ code: 'SHARE_PASSWORD_REQUIRED' })

    // One address may use 5 of the link's 10 attempts per window (the defaults).
    for (let i = 0; i < 4; i++) {
      await expect(open('wrong')).rejects.toMatchObject({ code: 'SHARE_PASSWORD_REQUIRED' })
    }
    // Right passwords, however many, cost nothing.
    for (let i = 0; i < 8; i++) expect((await open('open sesame')).node.name).toBe('secret')
    await expect(open('wrong')).rejects.toMatchObject({ code: 'SHARE_PASSWORD_REQUIRED' })
    // Now spent: refused before the password is even checked, right or not.
    await expect(open('open sesame')).rejects.toMatchObject({ code: 'RATE_LIMITED' })
    // Another address still has its share, and the window ends.
    expect(
      (await fx.services.links.open(token, { password: 'open sesame', address: '203.0.113.9' })).link.token,
    ).toBe(token)
    fx.advance(15 * 60_000)
    expect((await open('open sesame')).node.name).toBe('secret')
  })
})

import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { openServiceFixture, type ServiceFixture } from '../../test/helpers/service-fixture.js'

describe('FolderService', () => {
  let fx: ServiceFixture
  beforeEach(async () => {
    fx = await openServiceFixture()
  })
  afterEach(() => fx.close())

  it('creates a folder in the root and finds it with its path', async () => {
    const user = await fx.user()
    const created = await fx.services.folders.create(user, { name: 'docs' })
    const found = await fx.services.folders.get(user, created.node.id)
    expect(found.path).toBe('/docs')
    expect(found.node.name).toBe('docs')
  })
})

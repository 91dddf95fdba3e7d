import { afterEach, beforeEach, expect, it } from 'vitest'
import { newId } from '../../src/domain/ids.js'
import type { ShareLink } from '../../src/domain/model.js'
import type { PasswordAttemptLimits } from '../../src/ports/metadata/sharing-repository.js'
import type { MetadataStore } from '../../src/ports/metadata-store.js'
import { insertUser, node, T0 } from './metadata-fixtures.js'

export interface ThrottleStores {
  store: MetadataStore
  /**
   * Another store on the same database, as a second API node has; null where the database
   * serves one node (SQLite: two connections of one process would wait on each other's locks).
   */
  openSecond: (() => Promise<MetadataStore>) | null
  cleanup(): Promise<void>
}

const WINDOW = 15 * 60_000
const LIMITS: PasswordAttemptLimits = { windowMs: WINDOW, perLink: 10, perAddress: 10 }

/** The password throttle of SharingRepository: slots are taken before a check, atomically. */
export function sharePasswordThrottleContract(open: () => Promise<ThrottleStores>) {
  let stores: ThrottleStores
  let link: ShareLink
  beforeEach(async () => {
    stores = await open()
    const { store } = stores
    const owner = await insertUser(store)
    const file = node({ ownerId: owner.id, parentId: owner.rootFolderId, kind: 'file', name: 'f' })
    await store.nodes.insert(file)
    link = {
      id: newId(),
      token: newId(),
      ownerId: owner.id,
      nodeId: file.id,
      passwordHash: 'argon2id$fake',
      expiresAt: null,
      createdAt: T0,
      revokedAt: null,
      downloads: 0,
    }
    await store.sharing.insertLink(link, newId())
  })
  afterEach(async () => stores.cleanup())

  const reserve = (store: MetadataStore, address: string, now = T0, limits = LIMITS) =>
    store.sharing.reservePasswordAttempt(link.id, address, now, limits)

  it('grants the link its slots per window, then refuses until the window ends', async () => {
    const { store } = stores
    for (let i = 0; i < 10; i++) {
      expect(await reserve(store, `10.0.0.${i}`, T0 + i)).toEqual({ granted: true, windowStart: T0 })
    }
    expect(await reserve(store, '10.0.1.1', T0 + 100)).toEqual({ granted: false, windowEndsAt: T0 + WINDOW })
    expect(await reserve(store, '10.0.1.1', T0 + WINDOW - 1)).toMatchObject({ granted: false })
    expect(await reserve(store, '10.0.1.1', T0 + WINDOW)).toEqual({ granted: true, windowStart: T0 + WINDOW })
  })

  it('lets one address take only its share of the link', async () => {
    const { store } = stores
    const limits = { ...LIMITS, perAddress: 3 }
    for (let i = 0; i < 3; i++) expect((await reserve(store, 'attacker', T0, limits)).granted).toBe(true)
    expect(await reserve(store, 'attacker', T0, limits)).toEqual({
      granted: false,
      windowEndsAt: T0 + WINDOW,
    })
    // The refused one took nothing from the link: seven slots are left for everyone else.
    const granted = []
    for (let i = 0; i < 9; i++) granted.push((await reserve(store, `visitor ${i % 3}`, T0, limits)).granted)
    expect(granted).toEqual([true, true, true, true, true, true, true, false, false])
    // A new window gives the address its share again.
    expect((await reserve(store, 'attacker', T0 + WINDOW, limits)).granted).toBe(true)
  })

  it('takes a slot back when a password was right, but never from a later window', async () => {
    const { store } = stores
    const limits = { ...LIMITS, perLink: 2, perAddress: 1 }
    const first = await reserve(store, 'owner', T0, limits)
    expect(first).toEqual({ granted: true, windowStart: T0 })
    expect((await reserve(store, 'owner', T0, limits)).granted).toBe(false)
    await store.sharing.refundPasswordAttempt(link.id, 'owner', T0)
    expect((await reserve(store, 'owner', T0, limits)).granted).toBe(true)
    expect((await reserve(store, 'other', T0, limits)).granted).toBe(true)
    expect((await reserve(store, 'third', T0, limits)).granted).toBe(false)

    // Next window: a late refund of the old one gives nothing back.
    expect((await reserve(store, 'owner', T0 + WINDOW, limits)).granted).toBe(true)
    expect((await reserve(store, 'other', T0 + WINDOW, limits)).granted).toBe(true)
    await store.sharing.refundPasswordAttempt(link.id, 'owner', T0)
    expect((await reserve(store, 'third', T0 + WINDOW, limits)).granted).toBe(false)
  })

  it('never grants more than the limit to concurrent callers (on two stores where nodes can be two)', async () => {
    const second = stores.openSecond ? await stores.openSecond() : stores.store
    try {
      const tries = Array.from({ length: 120 }, (_, i) =>
        reserve(i % 2 === 0 ? stores.store : second, `10.0.0.${i % 7}`, T0 + (i % 5)),
      )
      const answers = await Promise.all(tries)
      expect(answers.filter((answer) => answer.granted)).toHaveLength(10)
      const shares = new Map<string, number>()
      answers.forEach((answer, i) => {
        if (answer.granted) shares.set(`${i % 7}`, (shares.get(`${i % 7}`) ?? 0) + 1)
      })
      expect(Math.max(...shares.values())).toBeLessThanOrEqual(LIMITS.perAddress)
    } finally {
      if (second !== stores.store) await second.close()
    }
  })

  it('refuses for a link that does not exist', async () => {
    const answer = await stores.store.sharing.reservePasswordAttempt('no such link', 'a', T0, LIMITS)
    expect(answer.granted).toBe(false)
  })
}

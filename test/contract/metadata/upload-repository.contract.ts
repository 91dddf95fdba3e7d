import { describe, expect, it } from 'vitest'
import { type BlobKey, newGeneration } from '../../../src/domain/blob-key.js'
import { newId } from '../../../src/domain/ids.js'
import type { UploadChunkRecord, UploadRecord, User } from '../../../src/domain/model.js'
import type { UploadCompletion } from '../../../src/ports/metadata/upload-repository.js'
import type { MetadataStore } from '../../../src/ports/metadata-store.js'
import {
  chunkList,
  hash,
  hashesOf,
  insertChunks,
  insertUploadNaming,
  insertUser,
  sorted,
  T0,
  uploadRecord,
} from '../metadata-fixtures.js'
import { type OpenStore, useFreshStore } from './fresh-store.js'

const UPLOAD_CHUNK_STATES = ['needed', 'prove', 'ok'] as const

/** What UploadRepository promises (src/ports/metadata/upload-repository.ts): sessions, chunk lists, completion. */
export function uploadRepositoryContract(open: OpenStore): void {
  describe('UploadRepository', () => {
    let store: MetadataStore
    useFreshStore(open, (opened) => {
      store = opened
    })

    describe('uploads', () => {
      const upload = uploadRecord
      const uploadChunks = (): UploadChunkRecord[] => [
        { index: 0, hash: hash('x'), size: 4, offset: 0, state: 'needed' },
        { index: 1, hash: hash('y'), size: 4, offset: 4, state: 'prove' },
        { index: 2, hash: hash('x'), size: 2, offset: 8, state: 'ok' },
      ]

      it('finds a session only for its user and before it expires', async () => {
        const user = await insertUser(store)
        const other = await insertUser(store)
        const session = upload(user.id, user.rootFolderId, { baseVersion: 3 })
        await store.uploads.insert(session, uploadChunks())
        expect(await store.uploads.find(user.id, session.id, T0 + 999)).toEqual(session)
        expect(await store.uploads.find(other.id, session.id, T0)).toBeNull()
        expect(await store.uploads.find(user.id, session.id, T0 + 1000)).toBeNull()
        expect(await store.uploads.find(user.id, newId(), T0)).toBeNull()
        expect(await store.uploads.chunks(session.id)).toEqual(uploadChunks())
        const all = uploadChunks()
        expect(await store.uploads.chunk(session.id, 1)).toEqual(all[1])
        expect(await store.uploads.chunk(session.id, all.length)).toBeNull()
        expect(await store.uploads.chunk(newId(), 0)).toBeNull()
      })

      it('sets chunk states by hash, every chunk of each hash', async () => {
        const user = await insertUser(store)
        const session = upload(user.id, user.rootFolderId)
        await store.uploads.insert(session, uploadChunks())
        const states = async () => (await store.uploads.chunks(session.id)).map((c) => c.state)
        await store.uploads.setStateByHash(session.id, [hash('x')], 'prove')
        expect(await states()).toEqual(['prove', 'prove', 'prove'])
        await store.uploads.setStateByHash(session.id, [hash('y'), hash('absent')], 'ok')
        await store.uploads.setStateByHash(session.id, [], 'needed')
        expect(await states()).toEqual(['prove', 'ok', 'prove'])
        await store.uploads.setStateByHash(session.id, [hash('x'), hash('y')], 'needed')
        expect(await states()).toEqual(['needed', 'needed', 'needed'])
      })

      it('deletes a session with its chunk list', async () => {
        const user = await insertUser(store)
        const session = upload(user.id, user.rootFolderId)
        await store.uploads.insert(session, uploadChunks())
        expect(await store.uploads.delete(session.id)).toBe(true)
        expect(await store.uploads.find(user.id, session.id, T0)).toBeNull()
        expect(await store.uploads.chunks(session.id)).toEqual([])
        expect(await store.uploads.delete(session.id)).toBe(false)
      })

      it('deletes expired sessions with their chunk lists and counts them', async () => {
        const user = await insertUser(store)
        const expired = upload(user.id, user.rootFolderId, { expiresAt: T0 + 10 })
        const live = upload(user.id, user.rootFolderId, { expiresAt: T0 + 11 })
        await store.uploads.insert(expired, uploadChunks())
        await store.uploads.insert(live, uploadChunks())
        expect(await store.uploads.deleteExpired(T0 + 10)).toBe(1)
        expect(await store.uploads.chunks(expired.id)).toEqual([])
        expect(await store.uploads.find(user.id, live.id, T0 + 10)).toEqual(live)
        expect(await store.uploads.chunks(live.id)).toHaveLength(3)
      })

      it('inserts a session of thousands of chunks', async () => {
        const user = await insertUser(store)
        const chunks = chunkList(Array.from({ length: 2600 }, () => 4)).map((c) => ({
          ...c,
          state: 'needed' as const,
        }))
        const session = upload(user.id, user.rootFolderId, {
          totalChunks: chunks.length,
          size: 4 * chunks.length,
        })
        await store.uploads.insert(session, chunks)
        expect(await store.uploads.chunks(session.id)).toEqual(chunks)
        await store.uploads.setStateByHash(
          session.id,
          chunks.map((c) => c.hash),
          'ok',
        )
        expect((await store.uploads.chunks(session.id)).every((c) => c.state === 'ok')).toBe(true)
      })

      /** An inserted session of `user` with the chunk list of uploadChunks (expiring at T0 + 1000). */
      const insertSession = async (
        user: User,
        overrides: Partial<UploadRecord> = {},
      ): Promise<UploadRecord> => {
        const session = upload(user.id, user.rootFolderId, overrides)
        await store.uploads.insert(session, uploadChunks())
        return session
      }
      /** What a complete made: a file of its own, so that answers can be told apart. */
      const made = (conflict = false): UploadCompletion => ({
        fileId: newId(),
        version: 3,
        contentHash: hash(`content ${newId()}`),
        conflict,
      })
      /** What `completion` answers for a session of the fixture's size (10 bytes) that made `completion`. */
      const answered = (completion: UploadCompletion) => ({ ...completion, size: 10 })
      /** `count` consecutive 4-byte chunks, their states cycling through all three. */
      const longList = (count: number): UploadChunkRecord[] =>
        chunkList(Array.from({ length: count }, () => 4)).map((chunk, index) => ({
          ...chunk,
          state: UPLOAD_CHUNK_STATES[index % UPLOAD_CHUNK_STATES.length]!,
        }))

      it('adds to a chunk list in batches: the whole list, in index order, across batches of over 500 rows', async () => {
        const user = await insertUser(store)
        const all = longList(1703)
        const session = upload(user.id, user.rootFolderId, { totalChunks: all.length, size: 4 * all.length })
        const bystander = await insertSession(user)
        // The first part with the session, as a batched declaration records it; then the rest in
        // calls of more than 500 rows each, one of them in reverse, and an empty one.
        await store.uploads.insert(session, all.slice(0, 3))
        await store.uploads.addChunks(session.id, all.slice(603).reverse())
        await store.uploads.addChunks(session.id, all.slice(3, 603))
        await store.uploads.addChunks(session.id, [])

        expect(await store.uploads.chunks(session.id)).toEqual(all)
        for (const index of [0, 3, 502, 503, 602, 603, 1102, 1702]) {
          expect(await store.uploads.chunk(session.id, index)).toEqual(all[index])
        }
        expect(await store.uploads.chunk(session.id, all.length)).toBeNull()
        expect(await store.uploads.find(user.id, session.id, T0)).toEqual(session)
        expect(await store.uploads.chunks(bystander.id)).toEqual(uploadChunks())
      })

      it('adds a chunk list whole or not at all: a batch that fails leaves none of the call behind', async () => {
        const user = await insertUser(store)
        const session = await insertSession(user)
        const more = longList(1200).slice(uploadChunks().length)
        // The last batch names an index the list holds already.
        const clashing = [...more, { ...more[0]!, index: 1 }]
        await expect(store.uploads.addChunks(session.id, clashing)).rejects.toThrow()
        expect(await store.uploads.chunks(session.id)).toEqual(uploadChunks())
        await store.uploads.addChunks(session.id, more)
        expect(await store.uploads.chunks(session.id)).toEqual([...uploadChunks(), ...more])
      })

      it("moves an open session's expiry, and answers false when there is no such open session", async () => {
        const user = await insertUser(store)
        const session = await insertSession(user)
        const bystander = await insertSession(user)

        expect(await store.uploads.setExpiry(session.id, T0 + 5000)).toBe(true)
        expect(await store.uploads.find(user.id, session.id, T0 + 4999)).toEqual({
          ...session,
          expiresAt: T0 + 5000,
        })
        expect(await store.uploads.find(user.id, session.id, T0 + 5000)).toBeNull()
        // Earlier too, and the sweep goes by the new expiry.
        expect(await store.uploads.setExpiry(session.id, T0 + 10)).toBe(true)
        expect(await store.uploads.find(user.id, session.id, T0 + 9)).toEqual({
          ...session,
          expiresAt: T0 + 10,
        })
        expect(await store.uploads.find(user.id, session.id, T0 + 10)).toBeNull()
        expect(await store.uploads.chunks(session.id)).toEqual(uploadChunks())
        expect(await store.uploads.find(user.id, bystander.id, T0 + 999)).toEqual(bystander)
        expect(await store.uploads.deleteExpired(T0 + 10)).toBe(1)
        expect(await store.uploads.find(user.id, bystander.id, T0 + 10)).toEqual(bystander)

        // Deleted, never there, completed: false, and a completed session keeps its expiry.
        expect(await store.uploads.setExpiry(session.id, T0 + 5000)).toBe(false)
        expect(await store.uploads.find(user.id, session.id, T0)).toBeNull()
        expect(await store.uploads.setExpiry(newId(), T0 + 5000)).toBe(false)
        const completion = made()
        expect(await store.uploads.markCompleted(bystander.id, completion, T0 + 1)).toBe(true)
        expect(await store.uploads.setExpiry(bystander.id, T0 + 5000)).toBe(false)
        expect(await store.uploads.completion(user.id, bystander.id, T0 + 999)).toEqual(answered(completion))
        expect(await store.uploads.completion(user.id, bystander.id, T0 + 1000)).toBeNull()
        expect(await store.uploads.find(user.id, bystander.id, T0 + 1)).toBeNull()
      })

      it('answers what a completed session made, only to its user and until it expires', async () => {
        const user = await insertUser(store)
        const other = await insertUser(store)
        const plain = await insertSession(user)
        const conflicted = await insertSession(user)
        expect(await store.uploads.completion(user.id, plain.id, T0)).toBeNull()

        const plainMade = made(false)
        const conflictedMade = made(true)
        expect(await store.uploads.markCompleted(plain.id, plainMade, T0 + 1)).toBe(true)
        expect(await store.uploads.markCompleted(conflicted.id, conflictedMade, T0 + 1)).toBe(true)
        expect(await store.uploads.completion(user.id, plain.id, T0 + 1)).toEqual(answered(plainMade))
        expect(await store.uploads.completion(user.id, plain.id, T0 + 999)).toEqual(answered(plainMade))
        expect(await store.uploads.completion(user.id, conflicted.id, T0 + 999)).toEqual(
          answered(conflictedMade),
        )
        expect(await store.uploads.completion(other.id, plain.id, T0 + 1)).toBeNull()
        expect(await store.uploads.completion(user.id, plain.id, T0 + 1000)).toBeNull()
        expect(await store.uploads.completion(user.id, newId(), T0 + 1)).toBeNull()
      })

      it('completes an open session once: true, then false, dropping its chunk list and closing it', async () => {
        const user = await insertUser(store)
        const session = await insertSession(user)
        const bystander = await insertSession(user)
        const first = made()

        expect(await store.uploads.markCompleted(session.id, first, T0 + 5)).toBe(true)
        expect(await store.uploads.find(user.id, session.id, T0 + 5)).toBeNull()
        expect(await store.uploads.chunks(session.id)).toEqual([])
        expect(await store.uploads.chunk(session.id, 0)).toBeNull()
        expect(await store.uploads.completion(user.id, session.id, T0 + 5)).toEqual(answered(first))

        // A second complete changes nothing: the first one's answer stays.
        expect(await store.uploads.markCompleted(session.id, made(true), T0 + 6)).toBe(false)
        expect(await store.uploads.completion(user.id, session.id, T0 + 6)).toEqual(answered(first))
        // Another session is left alone.
        expect(await store.uploads.find(user.id, bystander.id, T0 + 6)).toEqual(bystander)
        expect(await store.uploads.chunks(bystander.id)).toEqual(uploadChunks())
      })

      it('refuses to complete an expired, deleted or unknown session, changing nothing', async () => {
        const user = await insertUser(store)
        const expired = await insertSession(user)
        expect(await store.uploads.markCompleted(expired.id, made(), T0 + 1000)).toBe(false)
        expect(await store.uploads.markCompleted(expired.id, made(), T0 + 2000)).toBe(false)
        // Still as it was: open (as of before its expiry), with its chunk list, made nothing.
        expect(await store.uploads.find(user.id, expired.id, T0 + 999)).toEqual(expired)
        expect(await store.uploads.chunks(expired.id)).toEqual(uploadChunks())
        expect(await store.uploads.completion(user.id, expired.id, T0 + 999)).toBeNull()

        const aborted = await insertSession(user)
        expect(await store.uploads.delete(aborted.id)).toBe(true)
        expect(await store.uploads.markCompleted(aborted.id, made(), T0 + 1)).toBe(false)
        expect(await store.uploads.completion(user.id, aborted.id, T0 + 1)).toBeNull()

        expect(await store.uploads.markCompleted(newId(), made(), T0 + 1)).toBe(false)
      })

      it("completes in the caller's transaction: a rollback leaves the session open with its chunk list", async () => {
        const user = await insertUser(store)
        const session = await insertSession(user)
        const rolledBack = store.transaction(async (tx) => {
          expect(await tx.uploads.markCompleted(session.id, made(), T0 + 1)).toBe(true)
          expect(await tx.uploads.chunks(session.id)).toEqual([])
          throw new Error('rolled back')
        })
        await expect(rolledBack).rejects.toThrow('rolled back')
        expect(await store.uploads.find(user.id, session.id, T0 + 1)).toEqual(session)
        expect(await store.uploads.chunks(session.id)).toEqual(uploadChunks())
        expect(await store.uploads.completion(user.id, session.id, T0 + 1)).toBeNull()
        const committed = made()
        expect(await store.uploads.markCompleted(session.id, committed, T0 + 2)).toBe(true)
        expect(await store.uploads.completion(user.id, session.id, T0 + 2)).toEqual(answered(committed))
      })

      it('lets exactly one of ten concurrent completes of a session succeed, and keeps what it made', async () => {
        const user = await insertUser(store)
        const session = await insertSession(user)
        const attempts = Array.from({ length: 10 }, (_, i) => made(i % 2 === 1))
        const answers = await Promise.all(
          attempts.map((attempt) =>
            store.transaction((tx) => tx.uploads.markCompleted(session.id, attempt, T0 + 1)),
          ),
        )
        expect(answers.filter((answer) => answer)).toHaveLength(1)
        expect(await store.uploads.completion(user.id, session.id, T0 + 1)).toEqual(
          answered(attempts[answers.indexOf(true)] as UploadCompletion),
        )
        expect(await store.uploads.chunks(session.id)).toEqual([])
        expect(await store.uploads.find(user.id, session.id, T0 + 1)).toBeNull()
      })

      it("stops protecting a completed session's chunks: the collector may claim them, stray copies are orphans", async () => {
        const user = await insertUser(store)
        await insertChunks(store, [hash('done'), hash('shared'), hash('free')])
        const completed = await insertUploadNaming(store, user, [hash('done'), hash('shared')])
        await insertUploadNaming(store, user, [hash('shared')])
        await store.collector.mark(T0)
        const strays = [hash('done'), hash('shared')].map((chunkHash) => ({
          hash: chunkHash,
          generation: newGeneration(),
        }))
        const orphans = (copies: BlobKey[]) =>
          store.transaction(async (tx) => {
            await tx.chunks.guard('collect')
            return tx.collector.orphans(copies)
          })
        expect(hashesOf(await store.collector.claimable(T0, 10))).toEqual([hash('free')])
        expect(await orphans(strays)).toEqual([])

        expect(await store.uploads.markCompleted(completed.id, made(), T0 + 1)).toBe(true)
        // `shared` is still named by the open session; `done` by nothing now (a version's references
        // protect a completed upload's chunks, and this fixture made none).
        expect(hashesOf(await store.collector.claimable(T0, 10))).toEqual(
          sorted([hash('done'), hash('free')]),
        )
        expect(await orphans(strays)).toEqual([strays[0]])
        const claimed = await store.transaction(async (tx) => {
          await tx.chunks.guard('collect')
          return tx.collector.claim(T0, T0 + 2, 10)
        })
        expect(hashesOf(claimed)).toEqual(sorted([hash('done'), hash('free')]))
      })

      it('deletes only an open session, and answers whether it did', async () => {
        const user = await insertUser(store)
        const session = await insertSession(user)
        const completion = made()
        expect(await store.uploads.markCompleted(session.id, completion, T0 + 1)).toBe(true)
        // An abort after a complete: nothing to delete; what the complete made still answers.
        expect(await store.uploads.delete(session.id)).toBe(false)
        expect(await store.uploads.completion(user.id, session.id, T0 + 1)).toEqual(answered(completion))
        expect(await store.uploads.delete(newId())).toBe(false)

        const open = await insertSession(user)
        expect(await store.uploads.delete(open.id)).toBe(true)
        expect(await store.uploads.find(user.id, open.id, T0)).toBeNull()
        expect(await store.uploads.chunks(open.id)).toEqual([])
        expect(await store.uploads.delete(open.id)).toBe(false)
      })

      it('deletes expired sessions, completed ones too, with their chunk lists, and counts them', async () => {
        const user = await insertUser(store)
        const openExpired = await insertSession(user, { expiresAt: T0 + 10 })
        const doneExpired = await insertSession(user, { expiresAt: T0 + 10 })
        const doneLive = await insertSession(user, { expiresAt: T0 + 11 })
        const openLive = await insertSession(user, { expiresAt: T0 + 11 })
        const doneLiveMade = made(true)
        expect(await store.uploads.markCompleted(doneExpired.id, made(), T0)).toBe(true)
        expect(await store.uploads.markCompleted(doneLive.id, doneLiveMade, T0)).toBe(true)

        expect(await store.uploads.deleteExpired(T0 + 10)).toBe(2)
        // Gone: even asked as of before their expiry, neither answers.
        expect(await store.uploads.find(user.id, openExpired.id, T0)).toBeNull()
        expect(await store.uploads.chunks(openExpired.id)).toEqual([])
        expect(await store.uploads.completion(user.id, doneExpired.id, T0)).toBeNull()
        // The unexpired ones stay, open or completed.
        expect(await store.uploads.completion(user.id, doneLive.id, T0 + 10)).toEqual(answered(doneLiveMade))
        expect(await store.uploads.find(user.id, openLive.id, T0 + 10)).toEqual(openLive)
        expect(await store.uploads.chunks(openLive.id)).toEqual(uploadChunks())
        expect(await store.uploads.deleteExpired(T0 + 10)).toBe(0)
        expect(await store.uploads.deleteExpired(T0 + 11)).toBe(2)
        expect(await store.uploads.completion(user.id, doneLive.id, T0 + 10)).toBeNull()
      })

      it('sets states by hash in this session only, for more hashes than one statement takes, repeats and all', async () => {
        const user = await insertUser(store)
        const all = longList(2500).map((chunk) => ({ ...chunk, state: 'needed' as const }))
        const session = upload(user.id, user.rootFolderId, { totalChunks: all.length, size: 4 * all.length })
        await store.uploads.insert(session, all)
        const even = all.filter((chunk) => chunk.index % 2 === 0).map((chunk) => chunk.hash)
        const other = await insertUploadNaming(store, user, [even[0]!, even.at(-1)!, all[1]!.hash])

        // 1250 distinct hashes, each twice.
        await store.uploads.setStateByHash(session.id, [...even, ...[...even].reverse()], 'prove')
        expect((await store.uploads.chunks(session.id)).map((chunk) => chunk.state)).toEqual(
          all.map((chunk) => (chunk.index % 2 === 0 ? 'prove' : 'needed')),
        )
        expect((await store.uploads.chunks(other.id)).map((chunk) => chunk.state)).toEqual([
          'needed',
          'needed',
          'needed',
        ])
      })
    })
  })
}

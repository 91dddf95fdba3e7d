import { createHash, createHmac } from 'node:crypto'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { openServiceFixture, type ServiceFixture } from '../../../test/helpers/service-fixture.js'
import { bodyOf } from '../../../test/helpers/streams.js'
import { MiB } from '../../domain/chunk-plan.js'
import type { User } from '../../domain/model.js'
import type { UploadSessionView } from './upload-service.js'

const sha256 = (bytes: Buffer): string => createHash('sha256').update(bytes).digest('hex')
const hmac = (nonce: string, bytes: Buffer): string =>
  createHmac('sha256', Buffer.from(nonce, 'hex')).update(bytes).digest('hex')
/** A declaration of `count` 16 MiB chunks that are never sent: it only reserves quota. */
const bigDeclaration = (filename: string, count: number) => ({
  filename,
  size: count * 16 * MiB,
  chunkHashes: Array.from({ length: count }, (_, i) => sha256(Buffer.from(`${filename} ${i}`))),
  chunkSizes: Array.from({ length: count }, () => 16 * MiB),
})

describe('uploads (services/uploads)', () => {
  let fx: ServiceFixture
  let ann: User
  beforeEach(async () => {
    fx = await openServiceFixture()
    ann = await fx.user('ann')
  })
  afterEach(() => fx.close())

  const uploads = () => fx.services.uploads
  const reserved = (user: User) => fx.meta.uploads.reservedBytes(user.id, fx.now())
  const declare = (user: User, filename: string, parts: Buffer[]) =>
    uploads().init(user, {
      filename,
      size: parts.reduce((sum, part) => sum + part.length, 0),
      chunkHashes: parts.map(sha256),
      chunkSizes: parts.map((part) => part.length),
    })
  const put = (user: User, session: UploadSessionView, index: number, bytes: Buffer, hash = sha256(bytes)) =>
    uploads().putChunk({
      user,
      uploadId: session.uploadId,
      index,
      hash,
      contentLength: bytes.length,
      body: bodyOf(bytes),
    })
  /** Declares `parts`, sends them and completes: the file as version 1. */
  const uploadFile = async (user: User, filename: string, parts: Buffer[]) => {
    const session = await declare(user, filename, parts)
    for (const index of session.chunksNeeded) await put(user, session, index, parts[index] as Buffer)
    return uploads().complete(user, session.uploadId)
  }

  describe('session lifecycle', () => {
    it('reserves the declared bytes at init, and refuses a session that would not fit beside them', async () => {
      // Three fifths of the owner's quota, twice.
      const quota = (await fx.meta.users.findById(ann.id))?.quotaBytes ?? 0
      const count = Math.floor((quota * 0.6) / (16 * MiB))
      const first = await uploads().init(ann, bigDeclaration('first.bin', count))
      expect(first.chunksNeeded).toHaveLength(count)
      expect(await reserved(ann)).toBe(count * 16 * MiB)

      await expect(uploads().init(ann, bigDeclaration('second.bin', count))).rejects.toMatchObject({
        code: 'QUOTA_EXCEEDED',
        message: expect.stringContaining(`${count * 16 * MiB} bytes of it are held by open upload sessions`),
      })
      expect(await reserved(ann)).toBe(count * 16 * MiB)
    })

    it('abort ends the session and releases its reservation', async () => {
      const first = await uploads().init(ann, bigDeclaration('first.bin', 40))
      await uploads().abort(ann, first.uploadId)
      expect(await reserved(ann)).toBe(0)
      await expect(uploads().check(ann, first.uploadId)).rejects.toMatchObject({ code: 'UPLOAD_NOT_FOUND' })
      await expect(uploads().init(ann, bigDeclaration('second.bin', 40))).resolves.toMatchObject({
        totalChunks: 40,
      })
    })

    it('an expired session holds nothing, and the sweep removes it', async () => {
      const session = await uploads().init(ann, bigDeclaration('first.bin', 40))
      fx.advance(session.expiresAt - fx.now() + 1)
      expect(await reserved(ann)).toBe(0)
      expect(await uploads().sweepExpired()).toBe(1)
    })

    it('answers a bad name with INVALID_NAME before any other fault of the declaration', async () => {
      await expect(
        uploads().init(ann, { filename: '..', size: 1, chunkHashes: ['not a hash'] }),
      ).rejects.toMatchObject({ code: 'INVALID_NAME' })
      expect(await reserved(ann)).toBe(0)
    })
  })

  describe('chunk receipt', () => {
    it('stores a chunk whose bytes match its declared hash, and marks it received', async () => {
      const bytes = Buffer.from('the one chunk')
      const session = await declare(ann, 'one.txt', [bytes])
      expect(await put(ann, session, 0, bytes)).toEqual({
        index: 0,
        hash: sha256(bytes),
        deduplicated: false,
      })
      expect(await fx.meta.chunks.find(sha256(bytes))).toMatchObject({ state: 'live', size: bytes.length })
      expect((await uploads().check(ann, session.uploadId)).chunksNeeded).toEqual([])
    })

    it('refuses bytes that are not the declared chunk, and stores nothing', async () => {
      const bytes = Buffer.from('declared bytes')
      const other = Buffer.from('other  bytes!!')
      const session = await declare(ann, 'one.txt', [bytes])
      // The header names the declared hash, but the bytes hash to something else.
      await expect(put(ann, session, 0, other, sha256(bytes))).rejects.toMatchObject({
        code: 'HASH_MISMATCH',
      })
      // The header names another hash: refused before a byte is read.
      await expect(put(ann, session, 0, other)).rejects.toMatchObject({ code: 'HASH_MISMATCH' })
      const stored = []
      for await (const blob of fx.blobs.list()) stored.push(blob)
      expect(stored).toEqual([])
      expect(await fx.meta.chunks.find(sha256(bytes))).toBeNull()
      expect((await uploads().check(ann, session.uploadId)).chunksNeeded).toEqual([0])
    })

    it('refuses an index outside the declaration', async () => {
      const bytes = Buffer.from('x')
      const session = await declare(ann, 'one.txt', [bytes])
      for (const index of [1, -1, Number.NaN]) {
        await expect(put(ann, session, index, bytes)).rejects.toMatchObject({ code: 'INVALID_CHUNK_INDEX' })
      }
    })
  })

  describe('proof of possession', () => {
    const shared = Buffer.from('bytes ann stored first')
    let bob: User
    let session: UploadSessionView
    beforeEach(async () => {
      await uploadFile(ann, 'ann.txt', [shared])
      bob = await fx.user('bob')
      session = await declare(bob, 'bob.txt', [shared])
    })

    it('asks for a proof of a chunk stored by someone else, and accepts the right one', async () => {
      expect(session).toMatchObject({ chunksNeeded: [], chunksToProve: [0] })
      const proven = await uploads().prove(bob, session.uploadId, { '0': hmac(session.proofNonce, shared) })
      expect(proven.chunksToProve).toEqual([])
      const { file } = await uploads().complete(bob, session.uploadId)
      expect(file).toMatchObject({ name: 'bob.txt', size: shared.length, currentVersion: 1 })
    })

    it('refuses a proof made from other bytes, and leaves the chunk unproven', async () => {
      const wrong = hmac(session.proofNonce, Buffer.from('a guess'))
      await expect(uploads().prove(bob, session.uploadId, { '0': wrong })).rejects.toMatchObject({
        code: 'PROOF_INVALID',
      })
      expect((await uploads().check(bob, session.uploadId)).chunksToProve).toEqual([0])
      await expect(uploads().complete(bob, session.uploadId)).rejects.toMatchObject({
        code: 'CHUNKS_MISSING',
        details: { missing: [0] },
      })
    })
  })

  describe('commit', () => {
    it('complete makes the file, charges its bytes and releases the reservation', async () => {
      const parts = [Buffer.from('first part, '), Buffer.from('second part')]
      const session = await declare(ann, 'doc.txt', parts)
      expect(await reserved(ann)).toBe(23)
      for (const [index, part] of parts.entries()) await put(ann, session, index, part)

      const { file, conflict } = await uploads().complete(ann, session.uploadId)
      expect(conflict).toBe(false)
      expect(file).toMatchObject({ name: 'doc.txt', size: 23, currentVersion: 1, parentId: ann.rootFolderId })
      expect(await reserved(ann)).toBe(0)
      expect((await fx.meta.users.findById(ann.id))?.usedBytes).toBe(23)
      // A retried complete answers the same file, and makes no second version.
      expect((await uploads().complete(ann, session.uploadId)).file).toMatchObject({
        id: file.id,
        currentVersion: 1,
      })
    })

    it('a complete based on an outdated version keeps both, as a conflicted copy', async () => {
      const first = await uploadFile(ann, 'doc.txt', [Buffer.from('v1')])
      await uploadFile(ann, 'doc.txt', [Buffer.from('v2')])
      const late = await uploads().init(ann, {
        filename: 'doc.txt',
        size: 2,
        chunkHashes: [sha256(Buffer.from('v3'))],
        baseVersion: first.file.currentVersion,
      })
      await put(ann, late, 0, Buffer.from('v3'))
      const { file, conflict } = await uploads().complete(ann, late.uploadId)
      expect(conflict).toBe(true)
      expect(file.name).not.toBe('doc.txt')
      expect(file.currentVersion).toBe(1)
    })
  })
})

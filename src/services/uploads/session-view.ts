import type { Millis, UploadChunkRecord, UploadRecord } from '../../domain/model.js'

/** What the client is told about its session (API.md, Upload). */
export interface UploadSessionView {
  uploadId: string
  chunkSize: number
  totalChunks: number
  chunksNeeded: number[]
  chunksExisting: number
  chunksToProve: number[]
  proofNonce: string
  expiresAt: Millis
}

export function sessionView(upload: UploadRecord, chunks: readonly UploadChunkRecord[]): UploadSessionView {
  return {
    uploadId: upload.id,
    chunkSize: upload.chunkSize,
    totalChunks: upload.totalChunks,
    chunksNeeded: chunks.filter((chunk) => chunk.state === 'needed').map((chunk) => chunk.index),
    chunksExisting: chunks.filter((chunk) => chunk.state !== 'needed').length,
    chunksToProve: chunks.filter((chunk) => chunk.state === 'prove').map((chunk) => chunk.index),
    proofNonce: upload.proofNonce,
    expiresAt: upload.expiresAt,
  }
}

import { AppError } from '../../domain/errors.js'

export const uploadNotFound = (): AppError =>
  new AppError('UPLOAD_NOT_FOUND', 'no such upload session, or it has expired')

export const chunkBusy = (index: number): AppError =>
  new AppError(
    'CHUNK_BUSY',
    `chunk ${index} is being removed from storage this moment: send it again shortly`,
  )

/** The session was completed, aborted or expired by another request while this complete ran. */
export class SessionClosed extends Error {}

import { expect } from 'vitest'
import { AppError, type ErrorCode } from '../../src/domain/errors.js'

/**
 * Awaits `promise` and answers the AppError it rejects with, having checked its code: the one
 * way tests assert a domain error below HTTP. Fails when the promise resolves or rejects with
 * another code; rethrows anything that is not an AppError as it is, so the test shows the
 * real failure rather than "expected an AppError".
 */
export async function expectAppError(promise: Promise<unknown>, code: ErrorCode): Promise<AppError> {
  const outcome = await promise.then(
    (value: unknown) => ({ rejected: false as const, value }),
    (error: unknown) => ({ rejected: true as const, error }),
  )
  if (!outcome.rejected) expect.fail(`expected an AppError ${code}, but the call succeeded`)
  if (!(outcome.error instanceof AppError)) throw outcome.error
  expect(outcome.error.code, outcome.error.message).toBe(code)
  return outcome.error
}

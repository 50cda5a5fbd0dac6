import { ApiError } from '../errors'

/** The error for a change whose journal record could not be written; `outcome` says what became of the change. */
export function journalFailed(err: Error, outcome: string): ApiError {
  return new ApiError('journal_failed', `the journal could not be written (${err.message}); ${outcome}`)
}

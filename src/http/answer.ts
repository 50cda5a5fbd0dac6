import { ApiError } from '../errors'
import { type Maybe, isPromise, when } from '../store/job-store'
import type { Exchange } from './exchange'

/** Answers an error: an ApiError as it says, anything else as a logged 500. */
export function fail(ex: Exchange, err: unknown): void {
  if (err instanceof ApiError) ex.sendError(err)
  else ex.fault(err)
}

/**
 * Answers `ex` with `body(value)` once the service's `result` is there: at once for the in-memory
 * store without a journal, once the change is durable otherwise. A failure is answered as an error.
 */
export function answer<T>(ex: Exchange, result: Maybe<T>, body: (value: T) => string | Uint8Array): void {
  if (isPromise(result)) {
    when(result, (value) => ex.send(200, body(value)), (err) => fail(ex, err))
    return
  }
  // At once (the in-memory store without a journal, most replies): no closures to make.
  try {
    ex.send(200, body(result))
  } catch (err) {
    fail(ex, err)
  }
}

import { ApiError } from '../errors'
import type { Job } from '../queue/job'
import type { JobFilter, JobPage, PageQuery } from '../queue/pages'
import { type Maybe, isPromise } from '../store/job-store'
import { journalFailed } from './commit'

export const BULK_ACTIONS = ['delete', 'retry', 'relocate', 'reprioritize'] as const
export type BulkAction = (typeof BULK_ACTIONS)[number]

/** One request acting on many jobs: named by hash, or every job a filter matches. */
export interface BulkRequest {
  action: BulkAction
  hashes?: string[]
  filter?: JobFilter
  /** relocate: the lane to move to. */
  lane?: string
  /** reprioritize (or relocate): the new priority. */
  priority?: number
}

export interface BulkResult {
  /** Jobs named or matched. */
  matched: number
  done: number
  failed: number
  /** The first failures, each with its reply code and message. */
  errors: { hash: string; code: number; message: string }[]
}

export interface BulkOps {
  page(query: PageQuery): Maybe<JobPage>
  apply(hash: string): Maybe<Job>
  whenDurable(callback: (err: Error | undefined) => void): void
  defersReplies: boolean
}

/** Jobs read or changed between two turns of the event loop: other requests are served in between. */
const CHUNK = 1000
/** Failures listed in the reply (all are counted). */
const MAX_ERRORS = 100

const nextTurn = (): Promise<void> => new Promise((resolve) => setImmediate(resolve))

/**
 * Runs a bulk action: first every job the filter matches is listed (a page at a time, so a lane of
 * millions does not hold the daemon), then each is changed as a single request would change it,
 * a thousand per turn of the event loop, each journaled like a single change. A job that changed
 * meanwhile (taken, already deleted) is counted as failed with its reason; the others are done.
 * Resolves once every change is durable; rejects (journal_failed) when the write of any turn's changes failed.
 */
export async function runBulk(request: BulkRequest, ops: BulkOps): Promise<BulkResult> {
  const hashes = request.hashes ?? (await matching(request.filter!, ops))
  const result: BulkResult = { matched: hashes.length, done: 0, failed: 0, errors: [] }
  // Each turn's changes are written (and synced) on their own, and a failure breaks the journal
  // for that file only: later turns go to a fresh one. So every turn's write is waited for, not
  // only the last one's. (Resolved with the error, never rejected: nobody listens until the end.)
  const turns: Promise<Error | undefined>[] = []
  const turnWritten = (): Promise<Error | undefined> => new Promise((resolve) => ops.whenDurable(resolve))
  for (let i = 0; i < hashes.length; i++) {
    if (i > 0 && i % CHUNK === 0) {
      if (ops.defersReplies) turns.push(turnWritten())
      await nextTurn()
    }
    const hash = hashes[i]!
    try {
      // A change made at once is not awaited: a turn's changes then run without a microtask between
      // them, in which a compaction their records asked for would start a new journal file part way
      // through the turn, after which the turn's wait would cover only the new file.
      const applied = ops.apply(hash)
      if (isPromise(applied)) await applied
      result.done++
    } catch (err) {
      if (!(err instanceof ApiError)) throw err
      result.failed++
      if (result.errors.length < MAX_ERRORS) result.errors.push({ hash, code: err.code, message: err.message })
    }
  }
  if (ops.defersReplies && result.done > 0) {
    turns.push(turnWritten())
    const err = (await Promise.all(turns)).find((e) => e !== undefined)
    if (err !== undefined) throw journalFailed(err, `${result.done} of the ${result.matched} jobs were changed in memory only, until the next snapshot`)
  }
  return result
}

/** The hashes of every job the filter matches, read a page at a time. */
async function matching(filter: JobFilter, ops: BulkOps): Promise<string[]> {
  const hashes: string[] = []
  let cursor: string | undefined
  for (;;) {
    const page = await ops.page({ ...filter, sort: 'order', offset: 0, cursor, limit: CHUNK * 10 })
    for (const job of page.jobs) hashes.push(job.hash)
    if (page.nextCursor === null) return hashes
    cursor = page.nextCursor
    await nextTurn()
  }
}

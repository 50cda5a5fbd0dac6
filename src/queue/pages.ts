import { ApiError } from '../errors'
import { type Job, compareJobs } from './job'
import type { ReadyJobs } from './ready'

/** The states a page of jobs can show. */
export const PAGE_STATES = ['ready', 'leased', 'delayed', 'running', 'dead', 'succeeded'] as const
export type PageState = (typeof PAGE_STATES)[number]

/** Serving order (priority, then job number), oldest first or newest first (by job number). */
export const PAGE_SORTS = ['order', 'oldest', 'newest'] as const
export type PageSort = (typeof PAGE_SORTS)[number]

/** Which jobs a page, or a bulk action, covers: one lane's jobs in one state, whose message contains `q`. */
export interface JobFilter {
  lane: string
  state: PageState
  /** A substring the message must contain (case-sensitive); none: every job. */
  q?: string
}

export interface PageQuery extends JobFilter {
  sort: PageSort
  /** Jobs to skip (after `cursor`, if given). */
  offset: number
  /** Where a previous page ended (its `nextCursor`); opaque to clients. */
  cursor?: string
  limit: number
}

export interface JobPage {
  jobs: Job[]
  /** Jobs of the lane in that state, whatever `q`. */
  total: number
  /** Where the next page starts; null after the last. */
  nextCursor: string | null
}

/**
 * Jobs a page looks at, at most, before it answers (with fewer than `limit` jobs and a cursor to
 * go on from): a search that matches little cannot hold the daemon for long. About 5 ms.
 */
export const SCAN_BUDGET = 100_000

function cursorOf(job: Job, sort: PageSort): string {
  return sort === 'order' ? `${job.priority}.${job.jobNum}` : String(job.jobNum)
}

function parseCursor(cursor: string, sort: PageSort): { priority: number; jobNum: number } {
  const m = sort === 'order' ? /^(\d+)\.(\d+)$/.exec(cursor) : /^()(\d+)$/.exec(cursor)
  if (m === null) throw new ApiError('invalid_data', `"cursor" ${JSON.stringify(cursor)} is not a cursor of a page sorted by ${sort}: pass a page's next_cursor as it is, with the same sort`)
  return { priority: Number(m[1] || 0), jobNum: Number(m[2]) }
}

/** Takes a page from jobs given lazily in the page's order (`total` known beforehand). */
function collect(jobs: Iterable<Job>, query: PageQuery, total: number, skipDone: boolean): JobPage {
  const out: Job[] = []
  let skip = skipDone ? 0 : query.offset
  let scanned = 0
  let last: Job | undefined
  for (const job of jobs) {
    if (out.length === query.limit || scanned === SCAN_BUDGET) {
      // A cursor here would drop what is left of the offset: say so instead.
      if (skip > 0) throw new ApiError('invalid_data', `"offset" ${query.offset} is past the ${SCAN_BUDGET} jobs a page looks at${query.q === undefined ? ` in ${query.sort} order` : ' while searching'}: walk there with next_cursor (or use sort=order without q, which skips by size)`)
      // More remain: the next page starts after the last job looked at.
      return { jobs: out, total, nextCursor: cursorOf(last!, query.sort) }
    }
    scanned++
    last = job
    if (query.q !== undefined && !job.message.includes(query.q)) continue
    if (skip > 0) {
      skip--
      continue
    }
    out.push(job)
  }
  return { jobs: out, total, nextCursor: null }
}

/** A page of a lane's ready jobs, read from its priority buckets without copying the lane. */
export function readyPage(ready: ReadyJobs, query: PageQuery): JobPage {
  const after = query.cursor === undefined ? undefined : parseCursor(query.cursor, query.sort)
  if (query.sort === 'order') {
    // Without a search, the offset is skipped by sizes, not job by job.
    const fastSkip = query.q === undefined ? query.offset : 0
    return collect(ready.inOrderFrom(after, fastSkip), query, ready.size, fastSkip > 0 || query.offset === 0)
  }
  return collect(ready.byAge(query.sort === 'newest', after?.jobNum), query, ready.size, false)
}

/** A page of jobs held elsewhere (leased, delayed, running, dead, succeeded): sorted here, so O(k log k) in their number. */
export function listPage(jobs: Job[], query: PageQuery): JobPage {
  const order = query.sort === 'order' ? compareJobs : query.sort === 'oldest' ? (a: Job, b: Job) => a.jobNum - b.jobNum : (a: Job, b: Job) => b.jobNum - a.jobNum
  jobs.sort(order)
  let start = 0
  if (query.cursor !== undefined) {
    const { priority, jobNum } = parseCursor(query.cursor, query.sort)
    const probe = { priority, jobNum } as Job
    while (start < jobs.length && order(jobs[start]!, probe) <= 0) start++
  }
  return collect(jobs.slice(start), query, jobs.length, false)
}

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

/** Takes a page from jobs given one at a time in the page's order (`total` known beforehand). */
class Collector {
  readonly jobs: Job[] = []
  private skip: number
  private scanned = 0
  private last: Job | undefined
  private more = false

  constructor(
    private readonly query: PageQuery,
    private readonly total: number,
    skipDone: boolean,
  ) {
    this.skip = skipDone ? 0 : query.offset
  }

  /** Takes or passes over `job`; false once the page is full or the scan budget is spent. */
  readonly add = (job: Job): boolean => {
    const { query } = this
    if (this.jobs.length === query.limit || this.scanned === SCAN_BUDGET) {
      // A cursor here would drop what is left of the offset: say so instead.
      if (this.skip > 0) throw new ApiError('invalid_data', `"offset" ${query.offset} is past the ${SCAN_BUDGET} jobs a page looks at${query.q === undefined ? ` in ${query.sort} order` : ' while searching'}: walk there with next_cursor (or use sort=order without q, which skips by size)`)
      this.more = true
      return false
    }
    this.scanned++
    this.last = job
    if (query.q !== undefined && !job.message.includes(query.q)) return true
    if (this.skip > 0) this.skip--
    else this.jobs.push(job)
    return true
  }

  /** The page; more remain when a job was refused: the next page starts after the last one looked at. */
  page(): JobPage {
    return { jobs: this.jobs, total: this.total, nextCursor: this.more ? cursorOf(this.last!, this.query.sort) : null }
  }
}

/** A page of a lane's ready jobs, read from its priority buckets without copying the lane. */
export function readyPage(ready: ReadyJobs, query: PageQuery): JobPage {
  const after = query.cursor === undefined ? undefined : parseCursor(query.cursor, query.sort)
  if (query.sort === 'order') {
    // Without a search, the offset is skipped by sizes, not job by job.
    const fastSkip = query.q === undefined ? query.offset : 0
    const collector = new Collector(query, ready.size, fastSkip > 0 || query.offset === 0)
    ready.scanInOrder(after, fastSkip, collector.add)
    return collector.page()
  }
  const collector = new Collector(query, ready.size, false)
  for (const job of ready.byAge(query.sort === 'newest', after?.jobNum)) if (!collector.add(job)) break
  return collector.page()
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
  const collector = new Collector(query, jobs.length, false)
  for (let i = start; i < jobs.length; i++) if (!collector.add(jobs[i]!)) break
  return collector.page()
}

import type { HeapItem } from './heap'

export const DEFAULT_LANE = 'main'
export const DEFAULT_PRIORITY = 512
export const MAX_PRIORITY = 4294967295

/**
 * One queued job. `created` is whole seconds since the epoch (the original's timestamps have
 * second resolution); it is rendered as RFC 3339 only when a job is shown or saved.
 */
export class Job implements HeapItem {
  heapIndex = -1

  constructor(
    readonly jobNum: number,
    readonly hash: string,
    readonly created: number,
    readonly lane: string,
    readonly priority: number,
    readonly message: string,
  ) {}
}

/** Serving order: lower priority number first, then strict FIFO by job number. */
export function servedBefore(a: Job, b: Job): boolean {
  return a.priority < b.priority || (a.priority === b.priority && a.jobNum < b.jobNum)
}

export function compareJobs(a: Job, b: Job): number {
  return a.priority - b.priority || a.jobNum - b.jobNum
}

let cachedSecond = NaN
let cachedText = ''

/** RFC 3339 in UTC with second resolution, e.g. `2026-11-22T04:11:00Z`. */
export function rfc3339(seconds: number): string {
  if (seconds !== cachedSecond) {
    cachedSecond = seconds
    cachedText = new Date(seconds * 1000).toISOString().slice(0, 19) + 'Z'
  }
  return cachedText
}

/** The fields a job is shown with in `/jobs`, replies and `queue.json`, in the original's order. */
export interface JobView {
  job_num: number
  hash: string
  timestamp: string
  lane: string
  priority: number
  message: string
}

export function viewJob(job: Job): JobView {
  return {
    job_num: job.jobNum,
    hash: job.hash,
    timestamp: rfc3339(job.created),
    lane: job.lane,
    priority: job.priority,
    message: job.message,
  }
}

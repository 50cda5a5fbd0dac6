import type { Job } from '../queue/job'

/** How many (job number, time) marks are kept: at one mark per millisecond, the last minute or more. */
const MARKS = 1 << 16

/**
 * When recent jobs were scheduled, to the millisecond, without a field in every job: job numbers
 * grow with time, so it is enough to note the first job number of each millisecond in which jobs
 * were scheduled. A job's schedule time is then the mark at or below its number (a binary search).
 * The marks are a ring of the last 65,536 such milliseconds (1 MiB); a job older than the oldest
 * mark (or restored from a snapshot) falls back to its timestamp, which has whole seconds.
 */
export class ScheduleTimes {
  private readonly jobNums = new Float64Array(MARKS)
  private readonly times = new Float64Array(MARKS)
  /** Marks written so far; the newest is at (written - 1) % MARKS. */
  private written = 0
  private lastMs = -1

  constructor(private readonly clock: () => number = Date.now) {}

  /** A job was just scheduled. */
  note(jobNum: number): void {
    const now = this.clock()
    if (now === this.lastMs) return
    this.lastMs = now
    const i = this.written % MARKS
    this.jobNums[i] = jobNum
    this.times[i] = now
    this.written++
  }

  /**
   * Below this job number (exclusive), jobs from the last `scheduledAt`'s job up have the time it
   * answered: they were scheduled in the same millisecond (one mark). The job itself only, where
   * its time came from its timestamp.
   */
  sameUntil = 0

  /** When `job` was scheduled, in ms since the epoch. Sets `sameUntil`. */
  scheduledAt(job: Job): number {
    const count = Math.min(this.written, MARKS)
    const first = this.written - count
    if (count === 0 || job.jobNum < this.jobNums[first % MARKS]!) {
      this.sameUntil = job.jobNum + 1
      return job.created * 1000
    }
    // The last mark whose job number is at or below the job's: marks are in job-number order.
    let lo = first
    let hi = this.written - 1
    while (lo < hi) {
      const mid = lo + Math.ceil((hi - lo) / 2)
      if (this.jobNums[mid % MARKS]! <= job.jobNum) lo = mid
      else hi = mid - 1
    }
    this.sameUntil = lo + 1 < this.written ? this.jobNums[(lo + 1) % MARKS]! : Infinity
    return this.times[lo % MARKS]!
  }
}

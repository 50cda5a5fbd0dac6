import type { LeaseRun } from './held'

/** Job numbers per bucket. */
const BUCKET = 1024

/**
 * The widest gap between the numbers of two jobs side by side in one run: a run is listed in a
 * bucket for every 1,024 numbers it spans, so a job far from the one before it (an old job served
 * first, then new ones) starts a run of its own instead of listing one run in thousands of buckets.
 */
export const RUN_GAP = BUCKET

/**
 * Lease runs by the job numbers they span: each run is listed in every bucket of 1,024 numbers
 * from its first job to its last, so a run of a thousand jobs costs a few list appends, however
 * far apart its jobs' numbers are (a lane with many priorities hands out jobs a hundred numbers
 * apart). A Map entry for each job cost 180 ns a set at millions of held jobs, and pages of
 * numbers one allocation per job when the numbers were sparse (issue 15's profiles). Finding a
 * job looks through the runs of its bucket that span it: one for a lane of one priority, at most
 * one per priority (and per lane) whose runs are out at once otherwise.
 */
export class RunIndex {
  private readonly buckets = new Map<number, LeaseRun[]>()

  add(run: LeaseRun): void {
    for (let key = Math.floor(run.first / BUCKET), last = Math.floor(run.last / BUCKET); key <= last; key++) {
      const list = this.buckets.get(key)
      if (list === undefined) this.buckets.set(key, [run])
      else list.push(run)
    }
  }

  remove(run: LeaseRun): void {
    for (let key = Math.floor(run.first / BUCKET), last = Math.floor(run.last / BUCKET); key <= last; key++) {
      const list = this.buckets.get(key)!
      if (list.length === 1) this.buckets.delete(key)
      else list.splice(list.indexOf(run), 1)
    }
  }

  /** The run in which the job numbered `jobNum` is leased now, with its place there; undefined if none. */
  find(jobNum: number): { run: LeaseRun; index: number } | undefined {
    const list = this.buckets.get(Math.floor(jobNum / BUCKET))
    if (list === undefined) return undefined
    for (const run of list) {
      if (jobNum < run.first || jobNum > run.last) continue
      const index = run.indexOf(jobNum)
      // A job released and leased again is in an earlier run too, ended there.
      if (index >= 0 && run.ended[index] === 0) return { run, index }
    }
    return undefined
  }
}

/**
 * Lease runs by the lease numbers they hold, in buckets of 1,024: a run's numbers are consecutive
 * and no two runs share one, so a bucket holds few runs, in ascending numbers (they are added so).
 */
export class RunsBySerial {
  private readonly buckets = new Map<number, LeaseRun[]>()

  get empty(): boolean {
    return this.buckets.size === 0
  }

  add(run: LeaseRun): void {
    for (let key = Math.floor(run.firstSerial / BUCKET), last = lastKey(run); key <= last; key++) {
      const list = this.buckets.get(key)
      if (list === undefined) this.buckets.set(key, [run])
      else list.push(run)
    }
  }

  remove(run: LeaseRun): void {
    for (let key = Math.floor(run.firstSerial / BUCKET), last = lastKey(run); key <= last; key++) {
      const list = this.buckets.get(key)!
      if (list.length === 1) this.buckets.delete(key)
      else list.splice(list.indexOf(run), 1)
    }
  }

  /** The run holding lease number `serial`, if any. */
  find(serial: number): LeaseRun | undefined {
    const list = this.buckets.get(Math.floor(serial / BUCKET))
    if (list === undefined) return undefined
    // The last run starting at or below `serial` (a binary search: they ascend).
    let lo = 0
    let hi = list.length - 1
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1
      if (list[mid]!.firstSerial <= serial) lo = mid
      else hi = mid - 1
    }
    const run = list[lo]!
    return run.firstSerial <= serial && serial < run.firstSerial + run.jobs.length ? run : undefined
  }
}

function lastKey(run: LeaseRun): number {
  return Math.floor((run.firstSerial + run.jobs.length - 1) / BUCKET)
}

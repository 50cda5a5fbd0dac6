import { type HeapItem, IndexedHeap } from './heap'
import type { Job } from './job'

/** A job waiting in a bucket's put-back heap: the heap keeps its position here, not on the job. */
class PutBack implements HeapItem {
  heapIndex = -1

  constructor(readonly job: Job) {}
}

function olderFirst(a: PutBack, b: PutBack): boolean {
  return a.job.jobNum < b.job.jobNum
}

/**
 * The jobs of one priority in job-number order. New jobs arrive with ever larger numbers, so they
 * are appended to an array read from its head: O(1) in and out, in memory order. A job put back
 * behind newer ones (a failed hand-over; later, an expired lease) waits in a small side heap, and
 * `take` serves whichever of the two heads is older, so strict FIFO holds in every case.
 *
 * A job removed from the middle (deleted or moved: rare) stays where it is, listed in `removed`,
 * and is skipped when reached. The set lives on the bucket rather than a mark on each job, so the
 * millions of jobs that are never removed carry no field for it.
 */
export class Bucket implements HeapItem {
  heapIndex = -1
  private fifo: (Job | undefined)[] = []
  private head = 0
  /**
   * The number of the job last appended to `fifo`, what `add` compares a new job's with: read from
   * the job itself, that was a cache miss on every schedule (the job was appended a hundred
   * schedules earlier when priorities vary), the most of `add`'s time in perf.
   */
  private newestNum = 0
  private putBack: IndexedHeap<PutBack> | undefined
  /** Jobs removed from the middle and not yet reached, in `fifo` or `putBack`; undefined while none. */
  private removed: Set<Job> | undefined

  constructor(readonly priority: number) {}

  get size(): number {
    return this.fifo.length - this.head - (this.removed?.size ?? 0) + (this.putBack?.size ?? 0)
  }

  /** Removes `job`, which waits in this bucket: O(1), as it is only marked until reached. */
  remove(job: Job): void {
    ;(this.removed ??= new Set()).add(job)
    this.skipRemoved()
  }

  /** Whether `job`, found in `fifo` or `putBack`, was removed. */
  private isRemoved(job: Job): boolean {
    return this.removed !== undefined && this.removed.has(job)
  }

  /** Drops removed jobs from both heads, so each head is a live job. */
  private skipRemoved(): void {
    const removed = this.removed
    if (removed === undefined) return
    while (this.head < this.fifo.length && removed.delete(this.fifo[this.head]!)) this.fifo[this.head++] = undefined
    if (this.head === this.fifo.length) {
      this.fifo = []
      this.head = 0
    }
    while (this.putBack !== undefined && this.putBack.size > 0 && removed.delete(this.putBack.peek()!.job)) this.putBack.pop()
    if (removed.size === 0) this.removed = undefined
  }

  add(job: Job): void {
    if (this.head === this.fifo.length || this.newestNum < job.jobNum) {
      this.fifo.push(job)
      this.newestNum = job.jobNum
    } else {
      ;(this.putBack ??= new IndexedHeap<PutBack>(olderFirst)).push(new PutBack(job))
    }
  }

  /** Takes the oldest job; the bucket must not be empty. */
  take(): Job {
    const next = this.fifo[this.head]
    const back = this.putBack?.peek()?.job
    if (back !== undefined && (next === undefined || back.jobNum < next.jobNum)) {
      this.putBack!.pop()
      this.skipRemoved()
      return back
    }
    this.fifo[this.head++] = undefined
    this.skipRemoved()
    if (this.head >= 1024 && this.head * 2 >= this.fifo.length) {
      // Drop the consumed half so the array does not grow without bound.
      this.fifo = this.fifo.slice(this.head)
      this.head = 0
    }
    return next!
  }

  /** The bucket's oldest job (the next it serves); the bucket must not be empty. */
  oldest(): Job {
    const next = this.fifo[this.head]
    const back = this.putBack?.peek()?.job
    return back !== undefined && (next === undefined || back.jobNum < next.jobNum) ? back : next!
  }

  /** The first index of the FIFO at or after `head` whose job number is above `jobNum` (they grow along it). */
  private after(jobNum: number): number {
    let lo = this.head
    let hi = this.fifo.length
    while (lo < hi) {
      const mid = (lo + hi) >>> 1
      if (this.fifo[mid]!.jobNum <= jobNum) lo = mid + 1
      else hi = mid
    }
    return lo
  }

  /** The job numbered `jobNum` if it waits here: a binary search of the FIFO, a look through the put-back heap. */
  find(jobNum: number): Job | undefined {
    const i = this.after(jobNum) - 1
    const job = i >= this.head ? this.fifo[i] : undefined
    // A job removed here may come back under its number (moved away and back): then it waits in the heap.
    if (job !== undefined && job.jobNum === jobNum && !this.isRemoved(job)) return job
    return this.putBackJobs().find((j) => j.jobNum === jobNum)
  }

  /** The live jobs of the put-back heap, in no order. */
  private putBackJobs(): Job[] {
    if (this.putBack === undefined || this.putBack.size === 0) return []
    const jobs = this.putBack.copy().map((entry) => entry.job)
    return this.removed === undefined ? jobs : jobs.filter((job) => !this.isRemoved(job))
  }

  /**
   * How many jobs here are served before the one numbered `jobNum`: O(log n), or O(its place) while
   * jobs removed from the middle wait ahead of it to be skipped.
   */
  before(jobNum: number): number {
    const end = this.after(jobNum - 1)
    let count = end - this.head
    if (this.removed !== undefined) for (let i = this.head; i < end; i++) if (this.isRemoved(this.fifo[i]!)) count--
    for (const job of this.putBackJobs()) if (job.jobNum < jobNum) count++
    return count
  }

  /**
   * This bucket's jobs with numbers above `jobNum` in ascending order, or below it in descending
   * order, read lazily (a page reads only what it shows).
   */
  *from(jobNum: number, ascending: boolean): Generator<Job> {
    const putBack = this.putBackJobs().sort((a, b) => (ascending ? a.jobNum - b.jobNum : b.jobNum - a.jobNum))
    let p = 0
    const step = ascending ? 1 : -1
    const first = ascending ? this.after(jobNum) : this.after(jobNum - 1) - 1
    const inRange = (i: number): boolean => (ascending ? i < this.fifo.length : i >= this.head)
    for (let i = first; inRange(i); i += step) {
      const job = this.fifo[i]!
      if (this.isRemoved(job)) continue
      while (p < putBack.length && (ascending ? putBack[p]!.jobNum < job.jobNum : putBack[p]!.jobNum > job.jobNum)) {
        if (ascending ? putBack[p]!.jobNum > jobNum : putBack[p]!.jobNum < jobNum) yield putBack[p]!
        p++
      }
      yield job
    }
    for (; p < putBack.length; p++) if (ascending ? putBack[p]!.jobNum > jobNum : putBack[p]!.jobNum < jobNum) yield putBack[p]!
  }

  /**
   * Calls `visit` with this bucket's jobs numbered above `jobNum`, in order, until it returns false
   * (then returns false): plain loops, no generator, for scans of many jobs (a search).
   */
  scan(jobNum: number, visit: (job: Job) => boolean): boolean {
    if (this.putBack !== undefined && this.putBack.size > 0) {
      for (const job of this.from(jobNum, true)) if (!visit(job)) return false
      return true
    }
    const { fifo } = this
    for (let i = this.after(jobNum); i < fifo.length; i++) {
      const job = fifo[i]!
      if (!this.isRemoved(job) && !visit(job)) return false
    }
    return true
  }

  /** Whether the FIFO can be indexed directly (nothing removed from the middle, nothing put back). */
  get plain(): boolean {
    return this.removed === undefined && (this.putBack?.size ?? 0) === 0
  }

  /** The `i`-th job in order; only when `plain`. */
  at(i: number): Job {
    return this.fifo[this.head + i]!
  }

  /** This bucket's jobs, oldest first (a copy; the bucket is untouched). */
  inOrder(): Job[] {
    let fifo = this.fifo.slice(this.head) as Job[]
    if (this.removed !== undefined) fifo = fifo.filter((job) => !this.isRemoved(job))
    const putBack = this.putBackJobs().sort((a, b) => a.jobNum - b.jobNum)
    if (putBack.length === 0) return fifo
    const out: Job[] = []
    let p = 0
    for (const job of fifo) {
      while (p < putBack.length && putBack[p]!.jobNum < job.jobNum) out.push(putBack[p++]!)
      out.push(job)
    }
    while (p < putBack.length) out.push(putBack[p++]!)
    return out
  }
}

import { type HeapItem, IndexedHeap } from './heap'
import type { Job } from './job'

function olderFirst(a: Job, b: Job): boolean {
  return a.jobNum < b.jobNum
}

/** A job removed from the middle of a bucket's FIFO: left in place and skipped when reached. */
const REMOVED = -2

/**
 * The jobs of one priority in job-number order. New jobs arrive with ever larger numbers, so they
 * are appended to an array read from its head: O(1) in and out, in memory order. A job put back
 * behind newer ones (a failed hand-over; later, an expired lease) waits in a small side heap, and
 * `take` serves whichever of the two heads is older, so strict FIFO holds in every case.
 */
export class Bucket implements HeapItem {
  heapIndex = -1
  private fifo: (Job | undefined)[] = []
  private head = 0
  private putBack: IndexedHeap<Job> | undefined
  /** Jobs in `fifo` marked REMOVED and not yet reached. */
  private removed = 0

  constructor(readonly priority: number) {}

  get size(): number {
    return this.fifo.length - this.head - this.removed + (this.putBack?.size ?? 0)
  }

  /** Removes `job` from wherever it waits in this bucket: O(log n) from the put-back heap, O(1) from the FIFO. */
  remove(job: Job): void {
    if (this.putBack?.remove(job)) return
    job.heapIndex = REMOVED
    this.removed++
    this.skipRemoved()
  }

  /** Drops removed jobs from the head, so the head is always a live job. */
  private skipRemoved(): void {
    while (this.removed > 0 && this.head < this.fifo.length && this.fifo[this.head]!.heapIndex === REMOVED) {
      this.fifo[this.head]!.heapIndex = -1
      this.fifo[this.head++] = undefined
      this.removed--
    }
    if (this.head === this.fifo.length) {
      this.fifo = []
      this.head = 0
    }
  }

  add(job: Job): void {
    const newest = this.fifo[this.fifo.length - 1]
    if (this.head === this.fifo.length || newest!.jobNum < job.jobNum) this.fifo.push(job)
    else (this.putBack ??= new IndexedHeap<Job>(olderFirst)).push(job)
  }

  /** Takes the oldest job; the bucket must not be empty. */
  take(): Job {
    const next = this.fifo[this.head]
    const back = this.putBack?.peek()
    if (back !== undefined && (next === undefined || back.jobNum < next.jobNum)) return this.putBack!.pop()!
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
    const back = this.putBack?.peek()
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
    if (job !== undefined && job.jobNum === jobNum && job.heapIndex !== REMOVED) return job
    return this.putBack?.copy().find((j) => j.jobNum === jobNum)
  }

  /**
   * How many jobs here are served before the one numbered `jobNum`: O(log n), or O(its place) while
   * jobs removed from the middle wait ahead of it to be skipped.
   */
  before(jobNum: number): number {
    const end = this.after(jobNum - 1)
    let count = end - this.head
    if (this.removed > 0) for (let i = this.head; i < end; i++) if (this.fifo[i]!.heapIndex === REMOVED) count--
    if (this.putBack !== undefined) for (const job of this.putBack.copy()) if (job.jobNum < jobNum) count++
    return count
  }

  /**
   * This bucket's jobs with numbers above `jobNum` in ascending order, or below it in descending
   * order, read lazily (a page reads only what it shows).
   */
  *from(jobNum: number, ascending: boolean): Generator<Job> {
    const putBack = this.putBack === undefined || this.putBack.size === 0 ? [] : this.putBack.copy().sort((a, b) => (ascending ? a.jobNum - b.jobNum : b.jobNum - a.jobNum))
    let p = 0
    const step = ascending ? 1 : -1
    const first = ascending ? this.after(jobNum) : this.after(jobNum - 1) - 1
    const inRange = (i: number): boolean => (ascending ? i < this.fifo.length : i >= this.head)
    for (let i = first; inRange(i); i += step) {
      const job = this.fifo[i]!
      if (job.heapIndex === REMOVED) continue
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
      if (job.heapIndex !== REMOVED && !visit(job)) return false
    }
    return true
  }

  /** Whether the FIFO can be indexed directly (nothing removed from the middle, nothing put back). */
  get plain(): boolean {
    return this.removed === 0 && (this.putBack?.size ?? 0) === 0
  }

  /** The `i`-th job in order; only when `plain`. */
  at(i: number): Job {
    return this.fifo[this.head + i]!
  }

  /** This bucket's jobs, oldest first (a copy; the bucket is untouched). */
  inOrder(): Job[] {
    let fifo = this.fifo.slice(this.head) as Job[]
    if (this.removed > 0) fifo = fifo.filter((job) => job.heapIndex !== REMOVED)
    if (this.putBack === undefined || this.putBack.size === 0) return fifo
    const putBack = this.putBack.copy().sort((a, b) => a.jobNum - b.jobNum)
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

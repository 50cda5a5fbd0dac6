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

import { type HeapItem, IndexedHeap } from './heap'
import type { Job } from './job'

function olderFirst(a: Job, b: Job): boolean {
  return a.jobNum < b.jobNum
}

/**
 * The jobs of one priority in job-number order. New jobs arrive with ever larger numbers, so they
 * are appended to an array read from its head: O(1) in and out, in memory order. A job put back
 * behind newer ones (a failed hand-over; later, an expired lease) waits in a small side heap, and
 * `take` serves whichever of the two heads is older, so strict FIFO holds in every case.
 */
/** A job removed from the middle of a bucket's FIFO: left in place and skipped when reached. */
const REMOVED = -2

class Bucket implements HeapItem {
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

/**
 * A lane's ready jobs in serving order: lower priority first, then job number. Jobs sit in one
 * bucket per priority, and a heap orders the buckets that have jobs. Scheduling and receiving are
 * O(1) for a known priority (O(log p) with p distinct priorities waiting), and touch little memory:
 * a binary heap of a million jobs costs a cache miss on each of its twenty levels per operation.
 */
/** Jobs and message bytes queued across every lane, kept up to date by each lane's ReadyJobs. */
export interface QueueTotals {
  jobs: number
  bytes: number
}

export class ReadyJobs {
  private readonly buckets = new Map<number, Bucket>()
  private readonly nonEmpty = new IndexedHeap<Bucket>((a, b) => a.priority < b.priority)
  private count = 0

  constructor(private readonly totals: QueueTotals) {}

  get size(): number {
    return this.count
  }

  /** `bytes` is the message's UTF-8 size, when the caller has measured it already. */
  push(job: Job, bytes = Buffer.byteLength(job.message)): void {
    let bucket = this.buckets.get(job.priority)
    if (bucket === undefined) {
      bucket = new Bucket(job.priority)
      this.buckets.set(job.priority, bucket)
    }
    if (bucket.size === 0) this.nonEmpty.push(bucket)
    bucket.add(job)
    this.count++
    this.totals.jobs++
    this.totals.bytes += bytes
  }

  /** Removes a job waiting here (deleted from the middle of its lane). */
  remove(job: Job): void {
    const bucket = this.buckets.get(job.priority)!
    bucket.remove(job)
    this.count--
    this.totals.jobs--
    this.totals.bytes -= Buffer.byteLength(job.message)
    if (bucket.size === 0) {
      this.nonEmpty.remove(bucket)
      this.buckets.delete(bucket.priority)
    }
  }

  pop(): Job | undefined {
    const bucket = this.nonEmpty.peek()
    if (bucket === undefined) return undefined
    const job = bucket.take()
    this.count--
    this.totals.jobs--
    this.totals.bytes -= Buffer.byteLength(job.message)
    if (bucket.size === 0) {
      this.nonEmpty.pop()
      this.buckets.delete(bucket.priority)
    }
    return job
  }

  /** The ready job scheduled first (lowest job number), whatever its priority: O(priorities). */
  oldest(): Job | undefined {
    let oldest: Job | undefined
    for (const bucket of this.buckets.values()) {
      const job = bucket.oldest()
      if (oldest === undefined || job.jobNum < oldest.jobNum) oldest = job
    }
    return oldest
  }

  /** The job numbered `jobNum` if it is ready here: O(priorities × log n). */
  find(jobNum: number): Job | undefined {
    for (const bucket of this.buckets.values()) {
      const job = bucket.find(jobNum)
      if (job !== undefined) return job
    }
    return undefined
  }

  /** How many ready jobs are served before `job` (which waits here). */
  positionOf(job: Job): number {
    let position = 0
    for (const bucket of this.buckets.values()) {
      if (bucket.priority < job.priority) position += bucket.size
      else if (bucket.priority === job.priority) position += bucket.before(job.jobNum)
    }
    return position
  }

  /** The buckets that have jobs, in serving order (lowest priority number first). */
  private inPriorityOrder(): Bucket[] {
    return this.nonEmpty.copy().sort((a, b) => a.priority - b.priority)
  }

  /**
   * Calls `visit` with the jobs in serving order from `after` on (exclusive; from the start without
   * it), skipping the first `skip`, until it returns false: whole priorities are skipped by their
   * size, and within one, by index when nothing was removed from its middle.
   */
  scanInOrder(after: { priority: number; jobNum: number } | undefined, skip: number, visit: (job: Job) => boolean): void {
    for (const bucket of this.inPriorityOrder()) {
      if (after !== undefined && bucket.priority < after.priority) continue
      const from = after !== undefined && bucket.priority === after.priority ? after.jobNum : 0
      if (from === 0 && skip >= bucket.size) {
        skip -= bucket.size
        continue
      }
      if (from === 0 && skip > 0 && bucket.plain) {
        for (let i = skip; i < bucket.size; i++) if (!visit(bucket.at(i))) return
        skip = 0
        continue
      }
      const more = bucket.scan(from, (job) => {
        if (skip === 0) return visit(job)
        skip--
        return true
      })
      if (!more) return
    }
  }

  /** The jobs by job number (oldest first, or newest first), from `after` on (exclusive): a merge of the priorities. */
  *byAge(newestFirst: boolean, after: number | undefined): Generator<Job> {
    const start = after ?? (newestFirst ? Number.MAX_SAFE_INTEGER : 0)
    const heads = this.inPriorityOrder().map((bucket) => {
      const it = bucket.from(start, !newestFirst)
      return { it, job: it.next().value as Job | undefined }
    })
    for (;;) {
      let best: (typeof heads)[number] | undefined
      for (const head of heads) {
        if (head.job !== undefined && (best === undefined || (newestFirst ? head.job.jobNum > best.job!.jobNum : head.job.jobNum < best.job!.jobNum))) best = head
      }
      if (best === undefined) return
      yield best.job!
      best.job = best.it.next().value as Job | undefined
    }
  }

  /**
   * Every job in serving order, as one array per priority: a copy made of array slices (native
   * copies: about 50 ms for ten million jobs), plus a sort of the few jobs put back out of order.
   */
  inOrderParts(): Job[][] {
    return this.nonEmpty
      .copy()
      .sort((a, b) => a.priority - b.priority)
      .map((bucket) => bucket.inOrder())
  }

  inOrder(): Job[] {
    const out: Job[] = []
    for (const part of this.inOrderParts()) for (const job of part) out.push(job)
    return out
  }
}

import { Bucket } from './bucket'
import { GroupedBucket, type GroupWeights } from './groups'
import { IndexedHeap } from './heap'
import type { Job } from './job'

/** Jobs and message bytes queued across every lane, kept up to date by each lane's ReadyJobs. */
export interface QueueTotals {
  jobs: number
  bytes: number
}

/** A priority's jobs: one FIFO, or, once a job of that priority carries a group, a FIFO per group served in turn. */
type PriorityBucket = Bucket | GroupedBucket

const EVEN: GroupWeights = () => 1

/**
 * A lane's ready jobs in serving order: lower priority first, then job number. Jobs sit in one
 * bucket per priority, and a heap orders the buckets that have jobs. Scheduling and receiving are
 * O(1) for a known priority (O(log p) with p distinct priorities waiting), and touch little memory:
 * a binary heap of a million jobs costs a cache miss on each of its twenty levels per operation.
 * Within a priority whose jobs carry groups, the groups take turns (see GroupedBucket); a lane
 * without groups never makes a grouped bucket and pays one test per job for them.
 */
export class ReadyJobs {
  private readonly buckets = new Map<number, PriorityBucket>()
  private readonly nonEmpty = new IndexedHeap<PriorityBucket>((a, b) => a.priority < b.priority)
  private count = 0

  constructor(
    private readonly totals: QueueTotals,
    private readonly weights: GroupWeights = EVEN,
    /** Told when the last ready job of a priority leaves (the lane forgets that priority's stamp). */
    private readonly emptied: (priority: number) => void = () => {},
  ) {}

  get size(): number {
    return this.count
  }

  /** `bytes` is the message's UTF-8 size, when the caller has measured it already. */
  push(job: Job, bytes = Buffer.byteLength(job.message)): void {
    let bucket = this.buckets.get(job.priority)
    if (bucket === undefined) {
      bucket = job.group === undefined ? new Bucket(job.priority) : new GroupedBucket(job.priority, this.weights)
      this.buckets.set(job.priority, bucket)
    } else if (job.group !== undefined && bucket instanceof Bucket) {
      bucket = this.grouped(bucket)
    }
    if (bucket.size === 0) this.nonEmpty.push(bucket)
    bucket.add(job)
    this.count++
    this.totals.jobs++
    this.totals.bytes += bytes
  }

  /** A priority's first job with a group: its plain bucket's jobs become the group "" of a grouped one. */
  private grouped(plain: Bucket): GroupedBucket {
    const grouped = new GroupedBucket(plain.priority, this.weights)
    const waiting = this.nonEmpty.remove(plain)
    grouped.adopt(plain)
    this.buckets.set(plain.priority, grouped)
    if (waiting) this.nonEmpty.push(grouped)
    return grouped
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
      this.drop(bucket)
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
      this.drop(bucket)
    }
    return job
  }

  /** Forgets a priority whose last job left (the bucket is out of `nonEmpty` already). */
  private drop(bucket: PriorityBucket): void {
    this.buckets.delete(bucket.priority)
    this.emptied(bucket.priority)
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
  private inPriorityOrder(): PriorityBucket[] {
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

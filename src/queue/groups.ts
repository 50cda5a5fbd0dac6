import { Bucket } from './bucket'
import type { HeapItem } from './heap'
import type { Job } from './job'

/** A lane's weights by group (a group not named weighs 1). */
export type GroupWeights = (group: string) => number

/** The group of jobs scheduled without one, in a priority where others have one. */
export const NO_GROUP = ''

/** A group with jobs, in the round: a ring, so joining (at the end) and leaving cost O(1). */
class Member {
  next: Member = this
  prev: Member = this

  constructor(
    readonly group: string,
    readonly bucket: Bucket,
  ) {}
}

/**
 * The jobs of one priority of a lane whose jobs carry groups: a FIFO per group (a plain Bucket), served
 * in weighted round-robin (deficit round-robin with whole weights): the group whose turn it is gives up
 * to its weight in jobs, then the next group with jobs follows. So under a flood from one group every
 * other group still gets its share, and with every group backlogged the shares are exactly the weights.
 * Groups join the end of the round when they get a job and leave it when they have none.
 */
export class GroupedBucket implements HeapItem {
  heapIndex = -1
  private readonly members = new Map<string, Member>()
  /** The group whose turn it is; undefined when no group has jobs. */
  private current: Member | undefined
  /** Jobs the group whose turn it is may still give before the turn passes; 0: not begun. */
  private credit = 0
  private count = 0

  constructor(
    readonly priority: number,
    private readonly weightOf: GroupWeights,
  ) {}

  get size(): number {
    return this.count
  }

  /** Becomes grouped: a plain bucket's jobs (none carried a group) are the group "". */
  adopt(plain: Bucket): void {
    if (plain.size === 0) return
    this.join(new Member(NO_GROUP, plain))
    this.count += plain.size
  }

  add(job: Job): void {
    const group = job.group ?? NO_GROUP
    let member = this.members.get(group)
    if (member === undefined) this.join((member = new Member(group, new Bucket(this.priority))))
    member.bucket.add(job)
    this.count++
  }

  /** Takes the next job in the round; the bucket must not be empty. */
  take(): Job {
    const member = this.current!
    if (this.credit <= 0) this.credit = Math.max(1, this.weightOf(member.group))
    const job = member.bucket.take()
    this.count--
    this.credit--
    if (member.bucket.size === 0) this.leave(member)
    else if (this.credit <= 0) this.current = member.next
    return job
  }

  remove(job: Job): void {
    const member = this.members.get(job.group ?? NO_GROUP)!
    member.bucket.remove(job)
    this.count--
    if (member.bucket.size === 0) this.leave(member)
  }

  /**
   * This bucket's jobs in the order they will be served (copies; the bucket is untouched): the round
   * played out on copies, groups leaving it as they run out (a ring of indices: O(jobs)).
   */
  inOrder(): Job[] {
    const queues: { group: string; jobs: Job[] }[] = []
    for (let m = this.current, i = 0; m !== undefined && i < this.members.size; m = m.next, i++) queues.push({ group: m.group, jobs: m.bucket.inOrder() })
    const n = queues.length
    const next = Int32Array.from({ length: n }, (_, i) => (i + 1) % n)
    const prev = Int32Array.from({ length: n }, (_, i) => (i + n - 1) % n)
    const taken = new Int32Array(n)
    const out: Job[] = []
    let turn = 0
    let credit = this.credit
    for (let left = n; left > 0; ) {
      const queue = queues[turn]!
      if (credit <= 0) credit = Math.max(1, this.weightOf(queue.group))
      out.push(queue.jobs[taken[turn]++]!)
      credit--
      if (taken[turn] === queue.jobs.length) {
        next[prev[turn]!] = next[turn]!
        prev[next[turn]!] = prev[turn]!
        left--
        credit = 0
        turn = next[turn]!
      } else if (credit <= 0) turn = next[turn]!
    }
    return out
  }

  /*
   * What job pages and finds ask of a priority (as of a plain Bucket). A grouped priority is served
   * in turns, not by job number, so these read the order played out (inOrder: O(jobs of this
   * priority)); grouped lanes are the exception, and a page reads one priority at a time.
   */

  oldest(): Job {
    let oldest: Job | undefined
    for (const member of this.members.values()) {
      const job = member.bucket.oldest()
      if (oldest === undefined || job.jobNum < oldest.jobNum) oldest = job
    }
    return oldest!
  }

  find(jobNum: number): Job | undefined {
    for (const member of this.members.values()) {
      const job = member.bucket.find(jobNum)
      if (job !== undefined) return job
    }
    return undefined
  }

  /** How many jobs here are served before the one numbered `jobNum`. */
  before(jobNum: number): number {
    const i = this.inOrder().findIndex((job) => job.jobNum === jobNum)
    return i < 0 ? this.count : i
  }

  /** By job number, as Bucket.from: for pages sorted by age. */
  *from(jobNum: number, ascending: boolean): Generator<Job> {
    const jobs = this.inOrder().sort((a, b) => (ascending ? a.jobNum - b.jobNum : b.jobNum - a.jobNum))
    for (const job of jobs) if (ascending ? job.jobNum > jobNum : job.jobNum < jobNum) yield job
  }

  /**
   * Calls `visit` with the jobs served after the one numbered `jobNum` (from the start for 0), in
   * serving order, until it returns false. When that job has left meanwhile, every job of this
   * priority follows, in serving order: it was most likely taken, and then so were the jobs served
   * before it, while jobs of other groups numbered below it were served after it and not yet shown
   * (skipping the numbers below it, as a plain bucket may, lost those). Only a job deleted from the
   * middle leaves jobs shown before it, and those are shown again rather than lost.
   */
  scan(jobNum: number, visit: (job: Job) => boolean): boolean {
    const jobs = this.inOrder()
    const at = jobNum === 0 ? -1 : jobs.findIndex((job) => job.jobNum === jobNum)
    for (let i = at + 1; i < jobs.length; i++) if (!visit(jobs[i]!)) return false
    return true
  }

  /** Never indexed directly: see `at`. */
  get plain(): boolean {
    return false
  }

  at(i: number): Job {
    return this.inOrder()[i]!
  }

  /** A group gets its first job: it joins the end of the round (just before whose turn it is). */
  private join(member: Member): void {
    this.members.set(member.group, member)
    const current = this.current
    if (current === undefined) {
      this.current = member
      return
    }
    member.next = current
    member.prev = current.prev
    current.prev.next = member
    current.prev = member
  }

  /** A group has no jobs left: it leaves the round; if it was its turn, the turn passes on. */
  private leave(member: Member): void {
    this.members.delete(member.group)
    member.prev.next = member.next
    member.next.prev = member.prev
    if (this.current === member) {
      this.current = member.next === member ? undefined : member.next
      this.credit = 0
    }
  }
}

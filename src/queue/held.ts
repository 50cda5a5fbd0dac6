import { ApiError } from '../errors'
import type { ByteWriter } from './bytes'
import { hashSchemes } from './hash'
import { type HeapItem, IndexedHeap } from './heap'
import type { Job } from './job'

/**
 * A job out of its lane for a while: leased to a consumer until `at`, or released with a delay and
 * waiting until `at` to return. Both kinds sit in one heap ordered by deadline, so the daemon arms
 * a single timer for the earliest one (beanstalkd's way) instead of one timer per job.
 */
export class Held implements HeapItem {
  heapIndex = -1

  constructor(
    readonly job: Job,
    /** Milliseconds since the epoch. */
    public at: number,
    /** The lease's length in ms (what `touch` extends by); 0 for a delayed job. */
    public leaseMs: number,
    readonly bytes: number,
    /** Starts the lease's token; the whole token where `serial` is 0 (leases of other stores). */
    private readonly tokenStart = '',
    /** The memory store's lease number, which ends its token: no string is made per lease unless asked for. */
    private readonly serial = 0,
  ) {}

  get leased(): boolean {
    return this.leaseMs > 0
  }

  /** A lease's own identity, told to its holder: only it can ack, release or touch this lease. */
  get token(): string {
    return this.serial === 0 ? this.tokenStart : `${this.tokenStart}${this.serial}`
  }

  /** Writes the token's characters (no quotes); at most `tokenBound` bytes. */
  writeToken(out: ByteWriter): void {
    out.ascii(this.tokenStart)
    if (this.serial !== 0) out.uint(this.serial)
  }

  get tokenBound(): number {
    return this.tokenStart.length + 16
  }
}

/**
 * Every held job: a heap by deadline, and holds by job number so `ack`, `release` and `touch` find
 * them in O(1) and leave the heap in O(log n). A hash of this process leads to its number (hash.ts
 * runs its permutation backwards), so no hash string is made or kept per hold: keyed by hash, the
 * index cost a leased batch receive a third of its time (issue 15's profile).
 */
export class HeldJobs {
  private readonly byDeadline = new IndexedHeap<Held>((a, b) => a.at < b.at || (a.at === b.at && a.job.jobNum < b.job.jobNum))
  /** Every hold by its job's number: leases (for ack, release, touch) and delays (for delete, inspection). */
  private readonly byNum = new Map<number, Held>()
  /** Holds of jobs restored with a hash of an earlier process, which does not lead to their number. */
  private readonly byRestoredHash = new Map<string, Held>()
  private leases = 0
  /** Messages' UTF-8 bytes of every held job (they count against the queue's limits). */
  bytes = 0
  /** Leased and delayed jobs per lane, kept as they change, so status costs nothing per job. */
  private readonly perLane = new Map<string, { leased: number; delayed: number }>()
  private leasesGranted = 0

  constructor(
    /** Called with the new earliest deadline whenever a hold becomes the earliest. */
    private readonly onEarliest: (at: number) => void,
    /** Starts every lease token: different for each process, so a token outlives no restart. */
    private readonly tokenPrefix: string,
  ) {}

  get size(): number {
    return this.byDeadline.size
  }

  get leasedCount(): number {
    return this.leases
  }

  /** The hold on the job with `hash`, leased or delayed. */
  find(hash: string): Held | undefined {
    if (this.byRestoredHash.size > 0) {
      const restored = this.byRestoredHash.get(hash)
      if (restored !== undefined) return restored
    }
    const scheme = hashSchemes.of(hash)
    const jobNum = scheme?.jobNumOf(hash)
    const held = jobNum === undefined ? undefined : this.byNum.get(jobNum)
    return held !== undefined && held.job.scheme === scheme ? held : undefined
  }

  /** The held job numbered `jobNum` (held jobs are indexed by number). */
  findNumber(jobNum: number): Job | undefined {
    return this.byNum.get(jobNum)?.job
  }

  nextDeadline(): number | undefined {
    return this.byDeadline.peek()?.at
  }

  lease(job: Job, at: number, leaseMs: number, bytes: number): Held {
    const held = new Held(job, at, leaseMs, bytes, this.tokenPrefix, ++this.leasesGranted)
    this.add(held)
    return held
  }

  delay(job: Job, at: number, bytes: number): void {
    job.notBefore = at
    this.add(new Held(job, at, 0, bytes))
  }

  /**
   * The lease on the job with `hash` that `token` names; throws ApiError when the job is not
   * leased now, or leased under another token (its lease ended and it was leased again since).
   */
  leaseOf(hash: string, token: string): Held {
    const held = this.find(hash)
    if (held === undefined || !held.leased) {
      throw new ApiError('not_leased', `no leased job has hash ${JSON.stringify(hash)} (never leased, already acked or released, or its lease expired)`)
    }
    if (held.token !== token) {
      throw new ApiError('not_leased', `job ${held.job.jobNum} is not leased under lease_token ${JSON.stringify(token)}: that lease ended (it expired or was released) and the job was leased again`)
    }
    return held
  }

  /** Whether `held` is still in force: not ended (acked, released, expired) since it was made. */
  isCurrent(held: Held): boolean {
    return held.heapIndex >= 0 && this.byNum.get(held.job.jobNum) === held
  }

  /** Ends a hold (ack, release, expiry). */
  remove(held: Held): void {
    this.byDeadline.remove(held)
    this.byNum.delete(held.job.jobNum)
    if (held.job.restoredHash !== null) this.byRestoredHash.delete(held.job.restoredHash)
    held.job.notBefore = 0
    if (held.leased) this.leases--
    this.bytes -= held.bytes
    const counts = this.perLane.get(held.job.lane)!
    if (held.leased) counts.leased--
    else counts.delayed--
    if (counts.leased === 0 && counts.delayed === 0) this.perLane.delete(held.job.lane)
  }

  /** How many jobs of `lane` are leased and delayed now. */
  countsOf(lane: string): { leased: number; delayed: number } {
    return this.perLane.get(lane) ?? { leased: 0, delayed: 0 }
  }

  /** Moves a hold's deadline (touch). */
  reschedule(held: Held, at: number): void {
    this.byDeadline.remove(held)
    held.at = at
    this.byDeadline.push(held)
    if (this.byDeadline.peek() === held) this.onEarliest(at)
  }

  /** Takes the holds whose deadline is at or before `now`, earliest first. */
  *due(now: number): Generator<Held> {
    for (let top = this.byDeadline.peek(); top !== undefined && top.at <= now; top = this.byDeadline.peek()) {
      this.remove(top)
      yield top
    }
  }

  /** Held jobs of every lane, grouped by lane (for snapshots and status). */
  byLane(): Map<string, Held[]> {
    const out = new Map<string, Held[]>()
    for (const held of this.byDeadline.copy()) {
      let list = out.get(held.job.lane)
      if (list === undefined) out.set(held.job.lane, (list = []))
      list.push(held)
    }
    return out
  }

  private add(held: Held): void {
    this.byNum.set(held.job.jobNum, held)
    if (held.job.restoredHash !== null) this.byRestoredHash.set(held.job.restoredHash, held)
    let counts = this.perLane.get(held.job.lane)
    if (counts === undefined) this.perLane.set(held.job.lane, (counts = { leased: 0, delayed: 0 }))
    if (held.leased) counts.leased++
    else counts.delayed++
    if (held.leased) this.leases++
    this.bytes += held.bytes
    this.byDeadline.push(held)
    if (this.byDeadline.peek() === held) this.onEarliest(held.at)
  }
}

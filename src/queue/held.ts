import { ApiError } from '../errors'
import type { ByteWriter } from './bytes'
import { hashSchemes } from './hash'
import { type HeapItem, IndexedHeap } from './heap'
import type { Job } from './job'
import { RUN_GAP, RunIndex, RunsBySerial } from './run-index'

/**
 * The lease number that ends `token` after `start`, or -1 when it does not start so or does not end
 * in a number as written: decimal digits, no leading zero, at most 16 of them (a safe integer).
 */
function serialOf(token: string, start: string): number {
  const from = start.length
  if (token.length <= from || token.length > from + 16 || token.charCodeAt(from) === 48 || !token.startsWith(start)) return -1
  let serial = 0
  for (let i = from; i < token.length; i++) {
    const digit = token.charCodeAt(i) - 48
    if (digit < 0 || digit > 9) return -1
    serial = serial * 10 + digit
  }
  return serial
}

/** The token start last written, as bytes. */
const sharedStart = { text: '', bytes: Buffer.alloc(0) }

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

  /** Ties of deadline leave the heap by job number. */
  get order(): number {
    return this.job.jobNum
  }

  /** A lease's own identity, told to its holder: only it can ack, release or touch this lease. */
  get token(): string {
    return this.serial === 0 ? this.tokenStart : `${this.tokenStart}${this.serial}`
  }

  /** Whether `token` is this lease's (compared without making the token's string). */
  hasToken(token: string): boolean {
    if (this.serial === 0) return token === this.tokenStart
    return serialOf(token, this.tokenStart) === this.serial
  }

  /**
   * Writes the token's characters (no quotes); at most `tokenBound` bytes. The memory store's
   * leases share their token's start, written as bytes made once (see ByteWriter.bytes): as text,
   * it was a tenth of a leased batch receive.
   */
  writeToken(out: ByteWriter): void {
    if (this.serial === 0) return out.ascii(this.tokenStart)
    if (this.tokenStart !== sharedStart.text) {
      sharedStart.text = this.tokenStart
      sharedStart.bytes = Buffer.from(this.tokenStart, 'latin1')
    }
    out.bytes(sharedStart.bytes)
    out.uint(this.serial)
  }

  get tokenBound(): number {
    return this.tokenStart.length + 16
  }
}

/**
 * Jobs leased together by one batch receive, in ascending job numbers: one deadline, one length and
 * consecutive lease numbers for all, and one place in the deadline heap. Nothing is made per job
 * but its entry in the index by number: a Held object and a Map entry for each of a thousand jobs
 * were most of a leased batch receive's cost (issue 15). Ending one job's lease (ack, release)
 * marks it ended here; touching one moves it out into a Held of its own.
 */
export class LeaseRun implements HeapItem {
  heapIndex = -1
  /** Jobs whose lease here is still in force. */
  live: number
  readonly ended: Uint8Array
  /** The first and last job numbers (the first also orders ties of deadline in the heap). */
  readonly first: number
  readonly last: number

  constructor(
    readonly jobs: readonly Job[],
    readonly at: number,
    readonly leaseMs: number,
    /** The lease number of the first job; the others' follow in order. */
    readonly firstSerial: number,
    /** Messages' UTF-8 bytes of the jobs still leased here. */
    public bytes: number,
  ) {
    this.live = jobs.length
    this.ended = new Uint8Array(jobs.length)
    this.first = jobs[0]!.jobNum
    this.last = jobs[jobs.length - 1]!.jobNum
  }

  get order(): number {
    return this.first
  }

  /** Where the job numbered `jobNum` is in `jobs`, or -1 (a binary search: they ascend). */
  indexOf(jobNum: number): number {
    let lo = 0
    let hi = this.jobs.length - 1
    while (lo <= hi) {
      const mid = (lo + hi) >> 1
      const num = this.jobs[mid]!.jobNum
      if (num === jobNum) return mid
      if (num < jobNum) lo = mid + 1
      else hi = mid - 1
    }
    return -1
  }
}

/** A lease of a run, as a Held (made when asked for: handed out, found, expired); its run keeps the state. */
export class RunLease extends Held {
  constructor(
    readonly run: LeaseRun,
    readonly index: number,
    tokenStart: string,
    bytes = Buffer.byteLength(run.jobs[index]!.message),
  ) {
    super(run.jobs[index]!, run.at, run.leaseMs, bytes, tokenStart, run.firstSerial + index)
  }
}

/** Whether `next` can follow `job` in a run: same lane, its hash derived, a higher number not far above. */
function fitsRun(job: Job, next: Job): boolean {
  return next.lane === job.lane && next.restoredHash === null && next.jobNum > job.jobNum && next.jobNum - job.jobNum <= RUN_GAP
}

/**
 * Every held job: a heap by deadline, and holds by job number so `ack`, `release` and `touch` find
 * them in O(1) and leave the heap in O(log n). A hash of this process leads to its number (hash.ts
 * runs its permutation backwards), so no hash string is made or kept per hold: keyed by hash, the
 * index cost a leased batch receive a third of its time (issue 15's profile). Jobs leased by a
 * batch receive are held as runs (LeaseRun), one heap entry for each.
 */
export class HeldJobs {
  private readonly byDeadline = new IndexedHeap<Held | LeaseRun>((a, b) => a.at < b.at || (a.at === b.at && a.order < b.order))
  /** Every hold of its own by its job's number: leases (for ack, release, touch) and delays (for delete, inspection). */
  private readonly byNum = new Map<number, Held>()
  /** Runs of jobs leased together, by the numbers they span. */
  private readonly runs = new RunIndex()
  /** The same runs by the lease numbers they hold: an ack, release or touch finds its run by its token. */
  private readonly runsBySerial = new RunsBySerial()
  /** Holds of jobs restored with a hash of an earlier process, which does not lead to their number. */
  private readonly byRestoredHash = new Map<string, Held>()
  private jobs = 0
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
    return this.jobs
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
    if (jobNum === undefined) return undefined
    const held = this.byNum.get(jobNum) ?? this.runLease(jobNum)
    return held !== undefined && held.job.scheme === scheme ? held : undefined
  }

  /** The held job numbered `jobNum` (held jobs are indexed by number). */
  findNumber(jobNum: number): Job | undefined {
    return (this.byNum.get(jobNum) ?? this.runLease(jobNum))?.job
  }

  nextDeadline(): number | undefined {
    return this.byDeadline.peek()?.at
  }

  lease(job: Job, at: number, leaseMs: number, bytes: number): Held {
    const held = new Held(job, at, leaseMs, bytes, this.tokenPrefix, ++this.leasesGranted)
    this.add(held)
    return held
  }

  /**
   * Leases `jobs` (taken in this order) until `at`, each with its own token, and returns their
   * leases in the same order. Runs of ascending, near job numbers on one lane are held as LeaseRuns;
   * a job restored with its hash kept as a string (no known scheme derives it) is held on its own (its hash leads to no number).
   */
  leaseMany(jobs: readonly Job[], at: number, leaseMs: number): Held[] {
    const leases: Held[] = []
    for (let i = 0; i < jobs.length; ) {
      const first = jobs[i]!
      if (first.restoredHash !== null) {
        leases.push(this.lease(first, at, leaseMs, Buffer.byteLength(first.message)))
        i++
        continue
      }
      let end = i + 1
      while (end < jobs.length && fitsRun(jobs[end - 1]!, jobs[end]!)) end++
      const members = jobs.slice(i, end)
      const run = new LeaseRun(members, at, leaseMs, this.leasesGranted + 1, 0)
      this.leasesGranted += members.length
      for (let k = 0; k < members.length; k++) {
        const job = members[k]!
        const bytes = Buffer.byteLength(job.message)
        run.bytes += bytes
        leases.push(new RunLease(run, k, this.tokenPrefix, bytes))
      }
      this.counted(first.lane, true, members.length, run.bytes)
      this.runs.add(run)
      this.runsBySerial.add(run)
      this.byDeadline.push(run)
      if (this.byDeadline.peek() === run) this.onEarliest(at)
      i = end
    }
    return leases
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
    if (!held.hasToken(token)) {
      throw new ApiError('not_leased', `job ${held.job.jobNum} is not leased under lease_token ${JSON.stringify(token)}: that lease ended (it expired or was released) and the job was leased again`)
    }
    return held
  }

  /**
   * The lease of a run on the job with `hash` that `token` names, if it is in force; found by the
   * token's lease number. By job number, every lane's run spanning it was looked through, and the
   * numbers of lanes' jobs interleave: 27 µs an ack at 1,000 lanes with batch leases out.
   */
  runLeaseOf(hash: string, token: string): RunLease | undefined {
    if (this.runsBySerial.empty) return undefined
    const serial = serialOf(token, this.tokenPrefix)
    const run = serial < 0 ? undefined : this.runsBySerial.find(serial)
    if (run === undefined) return undefined
    const index = serial - run.firstSerial
    const job = run.jobs[index]!
    const scheme = hashSchemes.of(hash)
    if (run.ended[index] !== 0 || scheme === undefined || scheme !== job.scheme || scheme.jobNumOf(hash) !== job.jobNum) return undefined
    return new RunLease(run, index, this.tokenPrefix)
  }

  /** Whether `held` is still in force: not ended (acked, released, expired, touched out of its run) since it was made. */
  isCurrent(held: Held): boolean {
    if (held instanceof RunLease) return held.run.heapIndex >= 0 && held.run.ended[held.index] === 0
    return held.heapIndex >= 0 && this.byNum.get(held.job.jobNum) === held
  }

  /** Ends a hold (ack, release, expiry). */
  remove(held: Held): void {
    if (held instanceof RunLease) {
      this.endInRun(held.run, held.index, held.bytes)
      return
    }
    this.byDeadline.remove(held)
    this.byNum.delete(held.job.jobNum)
    if (held.job.restoredHash !== null) this.byRestoredHash.delete(held.job.restoredHash)
    held.job.notBefore = 0
    this.counted(held.job.lane, held.leased, -1, -held.bytes)
  }

  /** How many jobs of `lane` are leased and delayed now. */
  countsOf(lane: string): { leased: number; delayed: number } {
    return this.perLane.get(lane) ?? { leased: 0, delayed: 0 }
  }

  /**
   * Moves a lease's deadline to `at` and its length to `leaseMs` (touch); returns the lease, which
   * keeps its token. One of a run leaves it for a Held of its own.
   */
  reschedule(held: Held, at: number, leaseMs: number): Held {
    if (held instanceof RunLease) {
      this.endInRun(held.run, held.index, held.bytes)
      const own = new Held(held.job, at, leaseMs, held.bytes, this.tokenPrefix, held.run.firstSerial + held.index)
      this.add(own)
      return own
    }
    this.byDeadline.remove(held)
    held.at = at
    held.leaseMs = leaseMs
    this.byDeadline.push(held)
    if (this.byDeadline.peek() === held) this.onEarliest(at)
    return held
  }

  /** Takes the holds whose deadline is at or before `now`, earliest first (a run's jobs in order). */
  *due(now: number): Generator<Held> {
    for (let top = this.byDeadline.peek(); top !== undefined && top.at <= now; top = this.byDeadline.peek()) {
      if (top instanceof LeaseRun) {
        const leases = this.leasesOf(top)
        for (const lease of leases) this.endInRun(top, lease.index, lease.bytes)
        yield* leases
        continue
      }
      this.remove(top)
      yield top
    }
  }

  /** Held jobs of every lane, grouped by lane (for snapshots and status). */
  byLane(): Map<string, Held[]> {
    const out = new Map<string, Held[]>()
    for (const item of this.byDeadline.copy()) {
      for (const held of item instanceof LeaseRun ? this.leasesOf(item) : [item]) {
        let list = out.get(held.job.lane)
        if (list === undefined) out.set(held.job.lane, (list = []))
        list.push(held)
      }
    }
    return out
  }

  /** The lease of a run on the job numbered `jobNum`, if it is in force. */
  private runLease(jobNum: number): RunLease | undefined {
    const found = this.runs.find(jobNum)
    return found === undefined ? undefined : new RunLease(found.run, found.index, this.tokenPrefix)
  }

  /** The leases of a run still in force, in order. */
  private leasesOf(run: LeaseRun): RunLease[] {
    const leases: RunLease[] = []
    for (let i = 0; i < run.jobs.length; i++) if (run.ended[i] === 0) leases.push(new RunLease(run, i, this.tokenPrefix))
    return leases
  }

  /** Ends the lease of a run's job at `index` (its message has `bytes`); the run leaves the heap with its last. */
  private endInRun(run: LeaseRun, index: number, bytes: number): void {
    if (run.ended[index] !== 0) return
    const job = run.jobs[index]!
    run.ended[index] = 1
    run.live--
    run.bytes -= bytes
    if (run.live === 0) {
      this.byDeadline.remove(run)
      this.runs.remove(run)
      this.runsBySerial.remove(run)
    }
    this.counted(job.lane, true, -1, -bytes)
  }

  private add(held: Held): void {
    this.byNum.set(held.job.jobNum, held)
    if (held.job.restoredHash !== null) this.byRestoredHash.set(held.job.restoredHash, held)
    this.counted(held.job.lane, held.leased, 1, held.bytes)
    this.byDeadline.push(held)
    if (this.byDeadline.peek() === held) this.onEarliest(held.at)
  }

  /** Counts `jobs` more (or fewer) jobs of `lane` held, leased or delayed, with `bytes` of messages. */
  private counted(lane: string, leased: boolean, jobs: number, bytes: number): void {
    let counts = this.perLane.get(lane)
    if (counts === undefined) this.perLane.set(lane, (counts = { leased: 0, delayed: 0 }))
    if (leased) {
      counts.leased += jobs
      this.leases += jobs
    } else counts.delayed += jobs
    this.jobs += jobs
    this.bytes += bytes
    if (counts.leased === 0 && counts.delayed === 0) this.perLane.delete(lane)
  }
}

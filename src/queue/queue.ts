import { randomBytes } from 'node:crypto'
import { ApiError } from '../errors'
import { type ChangeLog, NO_CHANGE_LOG, type ReturnReason } from './changes'
import { type Held, HeldJobs } from './held'
import { type HistoryLimits, JobHistory } from './history'
import { type HashScheme, hashSchemes, processHashes } from './hash'
import { DEFAULT_LANE, Job, type RunReport, compareJobs } from './job'
import { type JobPage, type PageQuery, type PageState, listPage, readyPage } from './pages'
import { Lane } from './lane'
import { CronTable } from './cron-table'
import type { QueueTotals } from './ready'
import { type SavedHold, UniqueHold, UniqueKeys, type UniqueSpec } from './unique'

export interface ScheduleInput {
  message: string
  lane: string
  priority: number
  /** Wait this long before the job is ready (ms). */
  delayMs?: number
  /** Not queued while another job holds this key on the lane (see UniqueKeys). */
  unique?: UniqueSpec
  /** The job's hash, when its scheduler derives one (cron: from the entry and the fire time). */
  hash?: string
  /** Served in turn with the lane's other groups, within its priority. */
  group?: string
  /**
   * A schedule that waits for its job this long (ms): a store shared by several processes keeps
   * the job's end for this process to read (JobStore.waitedEnd). The in-memory store ignores it.
   */
  watchMs?: number
}

/** The hash a restored job was saved with, if it had one. */
export function restoredHashOf(job: RestoredJob): string | undefined {
  return job.hash ?? job.scheme?.hashOf(job.jobNum)
}

/** A job as read back from a snapshot. A missing hash or time is made up on restore. */
export interface RestoredJob extends ScheduleInput {
  jobNum: number
  hash?: string
  /** Set instead of `hash` where a known scheme derives the saved hash from the number (see restoredHashOf). */
  scheme?: HashScheme
  created?: number
  attempts?: number
  /** Still delayed until then (ms since the epoch). */
  notBefore?: number
}

export interface QueueOptions {
  /** Milliseconds since the epoch (lease and delay deadlines); injected so tests control time. */
  clock?: () => number
  /** Told of every change a restart must reproduce (the journal). */
  changes?: ChangeLog
  /** Called when a new earliest deadline is set, so whoever owns the timer can re-arm it. */
  onDeadline?: (at: number) => void
  /** How long succeeded jobs of runner lanes stay inspectable. */
  history?: HistoryLimits
  /** Stores this hash in each new job instead of deriving one (for readable tests). */
  makeHash?: (jobNum: number) => string
  /** Starts every lease token (default: random for each queue, so no token outlives a restart). */
  leaseTokenPrefix?: string
}

/** One lane as of a moment: its jobs in serving order, in consecutive parts (one per priority). */
export interface LaneSnapshot {
  lane: string
  count: number
  parts: Job[][]
}

/** Counts by lane name, in an object without a prototype: a lane may be called `__proto__`. */
export function byLaneName(): Record<string, number> {
  return Object.create(null) as Record<string, number>
}

/** Counts by lane (objects without a prototype), kept as jobs change: see `Queue.stats`. */
export interface LaneCounts {
  queued: Record<string, number>
  leased: Record<string, number>
  delayed: Record<string, number>
  dead: Record<string, number>
  /** When each lane's oldest ready job was scheduled (seconds since the epoch); lanes with none ready are absent. */
  oldestReady: Record<string, number>
}

/** Where a job is in its life, as `GET /job` shows it. */
export type JobState = 'queued' | 'running' | 'leased' | 'delayed' | 'dead' | 'succeeded'

/** A job found by hash or number, with its state and, when queued, how many jobs are served before it. */
export interface FoundJob {
  job: Job
  state: JobState
  position?: number
}

/** What happened to held jobs whose deadline passed. */
export interface Expired {
  /** Leases that ran out: these jobs are back in their lanes. */
  leases: Job[]
  /** Lanes that got ready jobs back (expired leases, delays over). */
  lanes: Set<string>
}

/**
 * The jobs the in-memory store keeps: lanes of ready jobs (one FIFO per priority), held jobs
 * (leased, delayed) in one deadline heap, dead and finished ones, and the hash index of runner
 * lanes. Pure logic: no sockets, no files, no timers, no limits, no receivers (the job service's).
 * Every change a restart must reproduce is told to `changes` (the journal).
 */
export class Queue {
  private readonly lanes = new Map<string, Lane>()
  private readonly totals: QueueTotals = { jobs: 0, bytes: 0 }
  private nextNum = 1
  private readonly clock: () => number
  private readonly makeHash: ((jobNum: number) => string) | undefined
  private readonly changes: ChangeLog
  /** Jobs leased to consumers or waiting out a delay. */
  private readonly held: HeldJobs
  /** Dead and recently succeeded jobs of runner lanes. */
  private readonly history: JobHistory
  /** Lanes whose queued jobs can be found by hash (runner lanes), and those jobs. */
  private readonly indexedLanes = new Set<string>()
  private readonly queuedByHash = new Map<string, Job>()
  /** Lanes paused by an operator: the job service hands their jobs to no one. */
  private readonly paused = new Set<string>()
  /** Unique keys held by jobs queued, out, or finished a short while ago. */
  private readonly uniqueKeys = new UniqueKeys()
  /** Each lane's group weights (lanes' `group_weights`); a group not named weighs 1. */
  private readonly groupWeights = new Map<string, Readonly<Record<string, number>>>()
  /** Cron entries' records (kept with the jobs, so snapshots and the journal carry both). */
  readonly cron: CronTable

  constructor(options: QueueOptions = {}) {
    this.clock = options.clock ?? Date.now
    this.makeHash = options.makeHash
    this.changes = options.changes ?? NO_CHANGE_LOG
    this.held = new HeldJobs(options.onDeadline ?? (() => undefined), options.leaseTokenPrefix ?? `${randomBytes(4).toString('hex')}-`)
    this.history = new JobHistory(options.history ?? { keepFinishedMs: () => 0, maxFinished: 0 })
    this.cron = new CronTable(this.changes)
    this.declareLane(DEFAULT_LANE)
  }

  /** The job number the next scheduled job will get. */
  get nextJobNum(): number {
    return this.nextNum
  }

  /** Never hand out a job number below `floor` (used at start so numbers grow across restarts). */
  reserveJobNumsBelow(floor: number): void {
    if (floor > this.nextNum) this.nextNum = floor
  }

  /** Queues a job (the job service has checked the limits). */
  schedule(input: ScheduleInput): Job {
    return this.add(input, Buffer.byteLength(input.message))
  }

  /** Queues every input in order, with consecutive job numbers. */
  scheduleMany(inputs: readonly ScheduleInput[]): Job[] {
    // A plain loop: `map` made a closure for every schedule.
    const jobs: Job[] = []
    for (let i = 0; i < inputs.length; i++) jobs.push(this.add(inputs[i]!, Buffer.byteLength(inputs[i]!.message)))
    return jobs
  }

  /**
   * Queues every input in order, as scheduleMany does, except those whose unique key is held (by a
   * job queued, out or finished less than its unique_for ago, or by an earlier input): for those,
   * the hold, naming the job that has the key.
   */
  scheduleUnique(inputs: readonly ScheduleInput[]): (Job | UniqueHold)[] {
    const now = this.clock()
    return inputs.map((input) => {
      const held = input.unique === undefined ? undefined : this.uniqueKeys.holder(input.lane, input.unique.key, now)
      return held ?? this.add(input, Buffer.byteLength(input.message))
    })
  }

  private add(input: ScheduleInput, bytes: number): Job {
    const lane = this.lane(input.lane)
    const jobNum = this.nextNum++
    const job = new Job(jobNum, lane.stamps.of(input.priority, Math.floor(this.clock() / 1000)), input.message, input.hash ?? this.makeHash?.(jobNum) ?? null)
    if (input.group !== undefined) job.group = input.group
    if (input.unique !== undefined) {
      job.unique = input.unique
      this.uniqueKeys.hold(job, input.unique)
    }
    if (input.delayMs !== undefined && input.delayMs > 0) {
      this.held.delay(job, this.clock() + input.delayMs, bytes)
      this.changes.scheduled(job)
      return job
    }
    lane.ready.push(job, bytes)
    if (this.indexedLanes.has(lane.name) || job.hasStoredHash) this.queuedByHash.set(job.hash, job)
    this.changes.scheduled(job)
    return job
  }

  /** Puts back a job loaded from a snapshot, keeping its number, hash and time. */
  restore(input: RestoredJob): Job {
    // What was accepted before a restart is loaded whatever the limits are now.
    const lane = this.lane(input.lane)
    const job = this.rebuild(input, lane)
    if (input.unique !== undefined) this.uniqueKeys.hold(job, input.unique)
    if (input.notBefore !== undefined && input.notBefore > this.clock()) this.held.delay(job, input.notBefore, Buffer.byteLength(job.message))
    else this.enqueue(job, lane)
    return job
  }

  /** A unique key held by a job that finished before a restart, read back from state.json or the journal. */
  restoreUniqueHold(saved: SavedHold): void {
    this.uniqueKeys.restore(saved, this.clock())
  }

  /** Unique keys held by finished jobs, for snapshots (those of jobs still here are saved with them). */
  finishedUniqueHolds(): SavedHold[] {
    return this.uniqueKeys.finished(this.clock())
  }

  /** How many unique keys are held, by jobs here and by finished ones. */
  get uniqueKeysHeld(): number {
    return this.uniqueKeys.size
  }

  /** A succeeded job loaded from a snapshot or the journal, kept until `until` (restore them oldest first). */
  restoreFinished(input: RestoredJob, report: RunReport | undefined, result: string | undefined, until: number): void {
    const job = this.rebuild(input)
    job.report = report
    job.result = result
    this.history.restoreSucceeded(job, until, this.clock())
  }

  /** Succeeded jobs kept for GET /job, oldest first (for snapshots). */
  allFinished(): { job: Job; until: number }[] {
    return this.history.allFinished(this.clock())
  }

  /** Puts back a dead job loaded from a snapshot, with its report. */
  restoreDead(input: RestoredJob, report: RunReport): Job {
    const job = this.rebuild(input)
    job.report = report
    this.history.bury(job)
    return job
  }

  /**
   * A job as it was saved, in its (declared) lane, not yet queued; job numbers continue above it.
   * A million are restored at start: the lane is looked up once for each, and what it lacks is not set.
   */
  private rebuild(input: RestoredJob, lane = this.lane(input.lane)): Job {
    // A hash some process of this data directory derived from the number is kept as its scheme (in the stamp), not as a string.
    const scheme = input.scheme ?? (input.hash === undefined ? undefined : hashSchemes.deriving(input.hash, input.jobNum))
    const stamp = lane.stamps.of(input.priority, input.created ?? Math.floor(this.clock() / 1000), scheme ?? null)
    const job = new Job(input.jobNum, stamp, input.message, scheme === undefined ? (input.hash ?? null) : null)
    this.reserveJobNumsBelow(job.jobNum + 1)
    if (input.attempts !== undefined) job.attempts = input.attempts
    if (input.unique !== undefined) job.unique = input.unique
    if (input.group !== undefined) job.group = input.group
    return job
  }

  /** How a lane's groups share its priorities (weighted round-robin); read at each turn, so it applies at once. */
  setGroupWeights(lane: string, weights: Readonly<Record<string, number>> | undefined): void {
    if (weights === undefined) this.groupWeights.delete(lane)
    else this.groupWeights.set(lane, weights)
  }

  /** Makes a lane's jobs findable by hash in every state (runner lanes). Call before jobs arrive. */
  indexLane(name: string): void {
    this.declareLane(name)
    this.indexedLanes.add(name)
  }

  /** Makes a lane known (listed by `/jobs` and status) even while it has no jobs. No limit applies. */
  declareLane(name: string): void {
    this.lane(name)
  }

  /**
   * Puts back a job whose reply could not be delivered (its client left), if that hand-over is
   * still the job's latest. A lease is ended only while it is in force: one that expired meanwhile
   * has put the job back already, and the job may be queued or with someone else now. A taken job
   * returns. Either way it keeps its place in its lane. Returns whether the job was put back.
   */
  returnUndelivered(job: Job, lease: Held | undefined): boolean {
    if (lease !== undefined) {
      if (!this.held.isCurrent(lease)) return false
      this.endHold(lease, 'not delivered')
      return true
    }
    this.changes.returned(job, 'not delivered')
    if (job.unique !== undefined) this.uniqueKeys.hold(job, job.unique)
    this.enqueue(job)
    return true
  }

  /** Takes the next job of a lane, or undefined when it has none ready (or does not exist). */
  receive(laneName: string): Job | undefined {
    const job = this.lanes.get(laneName)?.ready.pop()
    if (job !== undefined) {
      this.unindex(job)
      this.changes.taken(job)
      if (job.unique !== undefined) this.finishUnique(job, job.unique)
    }
    return job
  }

  /** Leases the next job of a lane for `leaseMs`, or returns undefined when it has none ready. */
  receiveLeased(laneName: string, leaseMs: number): Held | undefined {
    const job = this.lanes.get(laneName)?.ready.pop()
    return job === undefined ? undefined : this.lease(job, leaseMs)
  }

  /**
   * Leases up to `count` of a lane's next jobs for `leaseMs` (a batch receive), each with its own
   * token; their leases in serving order (none when the lane has none ready).
   */
  receiveLeasedMany(laneName: string, leaseMs: number, count: number): Held[] {
    const ready = this.lanes.get(laneName)?.ready
    const jobs: Job[] = []
    for (let job = ready?.pop(); job !== undefined; job = jobs.length < count ? ready!.pop() : undefined) jobs.push(job)
    if (jobs.length === 0) return []
    const leases = this.held.leaseMany(jobs, this.clock() + leaseMs, leaseMs)
    for (const job of jobs) this.changes.leased(job)
    return leases
  }

  /**
   * A consumer is done with the job it leased under `token`: it is gone for good. Throws ApiError
   * if that lease is not in force (code 9), or the job is a runner's (409).
   */
  ack(hash: string, token: string, result?: string): Job {
    const held = this.consumerLease(hash, token)
    // Only a job acked with a result is kept (for GET /job); others are gone, as in the original.
    if (result === undefined) return this.finish(held, false)
    held.job.result = result
    return this.finish(held, true)
  }

  /** A runner finished the job it holds under `lease`: gone from the queue, kept a while for inspection. */
  complete(lease: Held, report: RunReport, result?: string): Job {
    const held = this.current(lease)
    held.job.report = report
    held.job.result = result
    return this.finish(held, true)
  }

  /** A run failed with no retries left: the job is dead, kept with its report. */
  bury(lease: Held, report: RunReport): Job {
    const { job } = this.current(lease)
    this.held.remove(lease)
    this.queuedByHash.delete(job.hash)
    job.report = report
    this.history.bury(job)
    this.changes.buried(job)
    if (job.unique !== undefined) this.finishUnique(job, job.unique)
    return job
  }

  /** A run failed and will be tried again after `delayMs` (or at once: interrupted by shutdown). */
  retryLater(lease: Held, delayMs: number): Job {
    return this.releaseHold(this.current(lease), delayMs)
  }

  /** The job is done; `keep`: kept a while as succeeded (its lane's keep_finished), recorded whole. */
  private finish(held: Held, keep: boolean): Job {
    const { job } = held
    this.held.remove(held)
    // Only runner lanes' and restored jobs are indexed: deriving the hash of every other acked job cost a batch ack a tenth of its time.
    if (this.queuedByHash.size > 0) this.queuedByHash.delete(job.hash)
    const until = keep ? this.history.succeeded(job, this.clock()) : undefined
    if (until === undefined) this.changes.acked(job)
    else this.changes.finished(job, until)
    if (job.unique !== undefined) this.finishUnique(job, job.unique)
    return job
  }

  /** A finished job's unique key stays held for its unique_for; the journal records until when. */
  private finishUnique(job: Job, spec: UniqueSpec): void {
    const hold = this.uniqueKeys.finish(job, spec, this.clock())
    if (hold !== undefined) this.changes.uniqueHeld(hold)
  }

  /** The lease a consumer names by hash and token. Runner lanes' leases are their runs: 409. */
  private consumerLease(hash: string, token: string): Held {
    const inRun = this.held.runLeaseOf(hash, token)
    if (inRun !== undefined && !this.indexedLanes.has(inRun.job.lane)) return inRun
    const held = this.held.find(hash)
    if (held?.leased === true && this.indexedLanes.has(held.job.lane)) {
      throw new ApiError('conflict', `job ${held.job.jobNum} is running on lane ${JSON.stringify(held.job.lane)}; its runner acks or releases it, not a consumer`)
    }
    return this.held.leaseOf(hash, token)
  }

  /** `lease` itself, if still in force (a run that outlived its lease finds the job gone back). */
  private current(lease: Held): Held {
    if (!this.held.isCurrent(lease)) throw new ApiError('not_leased', `the lease on job ${lease.job.jobNum} ended before its run did`)
    return lease
  }

  /** Puts a dead job back in its lane with a fresh count of attempts. Throws ApiError if not dead. */
  retryDead(hash: string): Job {
    const job = this.history.unbury(hash)
    if (job === undefined) throw new ApiError('job_not_found', `no dead job has hash ${JSON.stringify(hash)}`)
    job.attempts = 0
    this.changes.returned(job, 'retried')
    if (job.unique !== undefined) this.uniqueKeys.hold(job, job.unique)
    this.enqueue(job)
    return job
  }

  /**
   * Removes a job for good: a dead one, a delayed one, or a queued one of a runner lane (from the
   * middle of its lane). A leased or running job cannot be deleted (ApiError conflict).
   */
  deleteJob(hash: string): Job {
    const dead = this.history.unbury(hash)
    const held = dead === undefined ? this.held.find(hash) : undefined
    if (held?.leased) throw new ApiError('conflict', `job ${held.job.jobNum} is ${this.indexedLanes.has(held.job.lane) ? 'running' : 'leased'}; delete it once that ends`)
    const queued = dead === undefined && held === undefined ? this.findReady(hash) : undefined
    const job = dead ?? held?.job ?? queued
    if (job === undefined) throw new ApiError('job_not_found', `no queued, delayed or dead job has hash ${JSON.stringify(hash)}`)
    if (held !== undefined) this.held.remove(held)
    if (queued !== undefined) this.lanes.get(job.lane)!.ready.remove(job)
    this.queuedByHash.delete(hash)
    this.changes.deleted(job)
    const released = job.unique === undefined ? undefined : this.uniqueKeys.release(job, job.unique)
    if (released !== undefined) this.changes.uniqueHeld(released)
    return job
  }

  /**
   * A job and its state, found by hash on any lane; undefined when it is not known. A queued job
   * comes with its position: how many of its lane's ready jobs are served before it.
   */
  findJob(hash: string): FoundJob | undefined {
    const held = this.held.find(hash)
    if (held !== undefined) return { job: held.job, state: !held.leased ? 'delayed' : this.indexedLanes.has(held.job.lane) ? 'running' : 'leased' }
    const queued = this.findReady(hash)
    if (queued !== undefined) return { job: queued, state: 'queued', position: this.lanes.get(queued.lane)!.ready.positionOf(queued) }
    const dead = this.history.deadJob(hash)
    if (dead !== undefined) return { job: dead, state: 'dead' }
    const succeeded = this.history.finishedJob(hash, this.clock())
    return succeeded === undefined ? undefined : { job: succeeded, state: 'succeeded' }
  }

  /**
   * A job by its number, on any lane: ready jobs by a binary search of each lane, others by their
   * hash when it is derived from the number, and otherwise (restored jobs leased, delayed, dead or
   * succeeded) by a look through those.
   */
  findByNumber(jobNum: number): FoundJob | undefined {
    const ready = this.readyByNumber(jobNum)
    if (ready !== undefined) return this.findJob(ready.hash)
    const derived = this.findJob(processHashes.hashOf(jobNum))
    if (derived !== undefined && derived.job.jobNum === jobNum) return derived
    const other = this.held.findNumber(jobNum) ?? this.history.findNumber(jobNum, this.clock())
    return other === undefined ? undefined : this.findJob(other.hash)
  }

  /** A page of a lane's jobs in one state (see pages.ts). An unknown lane has none. */
  page(query: PageQuery): JobPage {
    const lane = this.lanes.get(query.lane)
    if (query.state === 'ready') return lane === undefined ? { jobs: [], total: 0, nextCursor: null } : readyPage(lane.ready, query)
    return listPage(this.jobsIn(query.lane, query.state), query)
  }

  /** How many ready jobs are served before `job` (a ready job). */
  positionOf(job: Job): number {
    return this.lanes.get(job.lane)?.ready.positionOf(job) ?? 0
  }

  /** A lane's jobs in a state other than ready: O(jobs in that state). */
  private jobsIn(lane: string, state: Exclude<PageState, 'ready'>): Job[] {
    if (state === 'dead') return this.history.deadOf(lane, 0, Number.MAX_SAFE_INTEGER).jobs
    if (state === 'succeeded') return this.history.finishedOf(lane, this.clock())
    const runner = this.indexedLanes.has(lane)
    const wanted = (held: Held): boolean => (state === 'delayed' ? !held.leased : held.leased && (state === 'running') === runner)
    return (this.held.byLane().get(lane) ?? []).filter(wanted).map((held) => held.job)
  }

  /**
   * Moves a ready or delayed job to another lane and/or priority: it keeps its number, hash, time,
   * attempts and delay, and takes its place there by its number. The journal records it whole.
   * Leased and running jobs answer 409 (they are their holder's); dead ones too (retry them first).
   */
  relocate(hash: string, laneName: string, priority: number): Job {
    const held = this.held.find(hash)
    if (held?.leased) throw new ApiError('conflict', `job ${held.job.jobNum} is ${this.indexedLanes.has(held.job.lane) ? 'running' : 'leased'}; move it once that ends`)
    const ready = held === undefined ? this.findReady(hash) : undefined
    const job = held?.job ?? ready
    if (job === undefined) {
      if (this.history.deadJob(hash) !== undefined) throw new ApiError('conflict', `job with hash ${JSON.stringify(hash)} is dead: retry it, then move it`)
      throw new ApiError('job_not_found', `no queued or delayed job has hash ${JSON.stringify(hash)}`)
    }
    const unique = laneName === job.lane ? undefined : job.unique
    if (unique !== undefined) this.takeKeyAlong(job, unique, laneName)
    const moved = job.movedTo(this.lane(laneName).stamps, priority)
    if (unique !== undefined) this.uniqueKeys.hold(moved, unique)
    if (held !== undefined) {
      this.held.remove(held)
      this.held.delay(moved, held.at, held.bytes)
    } else {
      this.lanes.get(job.lane)!.ready.remove(job)
      this.queuedByHash.delete(hash)
      this.enqueue(moved)
    }
    this.changes.returned(moved, 'moved')
    return moved
  }

  /**
   * A unique job about to move to lane `to`: keys are per lane, so its key is freed on the lane it
   * leaves (as a delete frees it) and held on `to` by the caller. A key held on `to` by another job,
   * queued, out or finished less than its unique_for ago, refuses the move (it would queue the key twice).
   */
  private takeKeyAlong(job: Job, spec: UniqueSpec, to: string): void {
    const holder = this.uniqueKeys.holder(to, spec.key, this.clock())
    if (holder !== undefined) throw new ApiError('conflict', `job ${job.jobNum} has unique_key ${JSON.stringify(spec.key)}, which job ${holder.jobNum} holds on lane ${JSON.stringify(to)}; it was not moved`)
    const released = this.uniqueKeys.release(job, spec)
    if (released !== undefined) this.changes.uniqueHeld(released)
  }

  /** Pauses or resumes a lane (kept across restarts: the journal and state.json carry it). */
  setPaused(lane: string, paused: boolean): void {
    if (paused === this.paused.has(lane)) return
    if (paused) this.paused.add(lane)
    else this.paused.delete(lane)
    this.changes.lanePaused(lane, paused)
  }

  /** Pauses or resumes a lane as a snapshot or the journal says (at start: not journaled again). */
  restorePaused(lane: string, paused: boolean): void {
    if (paused) {
      // The journal names no lane whose jobs are all gone: a paused lane must still be there, listed and resumable.
      this.declareLane(lane)
      this.paused.add(lane)
    } else this.paused.delete(lane)
  }

  /** Lanes paused by an operator (the live set: read, never kept). */
  get pausedSet(): ReadonlySet<string> {
    return this.paused
  }

  /** Lanes paused by an operator. */
  pausedLanes(): string[] {
    return [...this.paused]
  }

  /** A lane's dead jobs, newest first (paginated). */
  deadJobs(lane: string, offset: number, limit: number): { total: number; jobs: Job[] } {
    return this.history.deadOf(lane, offset, limit)
  }

  /** Every dead job by lane, for snapshots. */
  allDead(): Map<string, Job[]> {
    return this.history.allDead()
  }

  get deadCount(): number {
    return this.history.deadCount
  }

  /**
   * A consumer gives the job it leased under `token` back: to its place in its lane now, or after
   * `delayMs`. Throws ApiError as ack does.
   */
  release(hash: string, token: string, delayMs = 0): Job {
    return this.releaseHold(this.consumerLease(hash, token), delayMs)
  }

  private releaseHold(held: Held, delayMs: number): Job {
    if (delayMs <= 0) {
      this.endHold(held, 'released')
      return held.job
    }
    this.held.remove(held)
    this.held.delay(held.job, this.clock() + delayMs, held.bytes)
    // After the delay is set: the record carries it, so a restart keeps it.
    this.changes.returned(held.job, 'released')
    return held.job
  }

  /**
   * Extends the lease `token` names to `leaseMs` (default: its original length) from now; returns
   * it (its new deadline is `at`). Throws ApiError as ack does.
   */
  touch(hash: string, token: string, leaseMs?: number): Held {
    const held = this.consumerLease(hash, token)
    const length = leaseMs ?? held.leaseMs
    return this.held.reschedule(held, this.clock() + length, length)
  }

  /** The earliest lease or delay deadline (ms since the epoch), if any job is held. */
  nextDeadline(): number | undefined {
    return this.held.nextDeadline()
  }

  /** Returns every held job whose deadline is at or before `now` to its lane. */
  expireDue(now = this.clock()): Expired {
    const expired: Expired = { leases: [], lanes: new Set() }
    for (const held of this.held.due(now)) {
      if (held.leased) {
        this.changes.returned(held.job, 'lease expired')
        expired.leases.push(held.job)
      }
      this.enqueue(held.job)
      expired.lanes.add(held.job.lane)
    }
    return expired
  }

  private lease(job: Job, leaseMs: number): Held {
    const held = this.held.lease(job, this.clock() + leaseMs, leaseMs, Buffer.byteLength(job.message))
    this.changes.leased(job)
    return held
  }

  private endHold(held: Held, reason: ReturnReason): void {
    this.held.remove(held)
    this.changes.returned(held.job, reason)
    this.enqueue(held.job)
  }

  /** Message bytes of every job in memory: ready, held and dead. */
  get queuedBytes(): number {
    return this.totals.bytes + this.held.bytes + this.history.deadBytes
  }

  /**
   * Ready, leased, delayed and dead counts of every lane, and when its oldest ready job was
   * scheduled: O(lanes × priorities waiting), whatever the number of jobs.
   */
  stats(): LaneCounts {
    const stats: LaneCounts = { queued: byLaneName(), leased: byLaneName(), delayed: byLaneName(), dead: byLaneName(), oldestReady: byLaneName() }
    for (const [name, lane] of this.lanes) {
      const held = this.held.countsOf(name)
      stats.queued[name] = lane.ready.size
      stats.leased[name] = held.leased
      stats.delayed[name] = held.delayed
      stats.dead[name] = this.history.deadCountOf(name)
      const oldest = lane.ready.oldest()
      if (oldest !== undefined) stats.oldestReady[name] = oldest.created
    }
    return stats
  }

  hasLane(name: string): boolean {
    return this.lanes.has(name)
  }

  /** How many jobs of the lane are ready now. */
  readyCount(name: string): number {
    return this.lanes.get(name)?.ready.size ?? 0
  }

  /** Whether the lane has a job ready now. */
  hasReady(name: string): boolean {
    return (this.lanes.get(name)?.ready.size ?? 0) > 0
  }

  get laneCount(): number {
    return this.lanes.size
  }

  /** Every job in memory but the succeeded ones: ready, leased, delayed and dead (what the limits count). */
  get totalQueued(): number {
    return this.totals.jobs + this.held.size + this.history.deadCount
  }

  /** Succeeded jobs forgotten before their keep_finished time, to stay within max_finished_*. */
  get finishedForgotten(): number {
    return this.history.forgotten
  }

  get leasedJobs(): number {
    return this.held.leasedCount
  }

  laneNames(): string[] {
    return [...this.lanes.keys()]
  }

  /** A lane's ready jobs in the order they will be served (a sorted copy; the heap is untouched). */
  jobsInOrder(laneName: string): Job[] {
    const lane = this.lanes.get(laneName)
    return lane === undefined ? [] : lane.ready.inOrder()
  }

  /**
   * Every lane with its jobs in serving order, as of now: O(n) pointer copying (about 5 ms for a
   * million jobs), so a snapshot can then be written piecemeal while the queue keeps serving.
   * Leased and delayed jobs are included at their place: after a restart they are queued again.
   */
  snapshot(): LaneSnapshot[] {
    return this.lanesAsOfNow(this.held.byLane())
  }

  /** Every lane with its ready jobs (what receives would hand out, in order): `GET /jobs`. */
  readyJobs(): LaneSnapshot[] {
    return this.lanesAsOfNow(new Map())
  }

  private lanesAsOfNow(held: Map<string, Held[]>): LaneSnapshot[] {
    return [...this.lanes].map(([name, lane]) => {
      const parts = lane.ready.inOrderParts()
      const out = held.get(name)
      if (out === undefined) return { lane: name, count: lane.ready.size, parts }
      return { lane: name, count: lane.ready.size + out.length, parts: [mergeInOrder(parts, out.map((h) => h.job))] }
    })
  }

  /** The named lane, created on first use (the job service checked max_lanes). */
  private lane(name: string): Lane {
    let lane = this.lanes.get(name)
    if (lane === undefined) {
      lane = new Lane(name, this.totals, (group) => this.groupWeights.get(name)?.[group] ?? 1)
      this.lanes.set(name, lane)
    }
    return lane
  }

  /**
   * Whether a queued job is kept in `queuedByHash`: every job of a runner lane, and jobs whose hash
   * is stored (restored from a snapshot). The others' hashes are derived from their numbers, which
   * `findReady` recovers from the hash, so they need no entry (no memory per job).
   */
  private indexes(job: Job): boolean {
    return this.indexedLanes.has(job.lane) || job.hasStoredHash
  }

  /** Forgets an indexed job; for the others costs nothing (no hash is derived). */
  private unindex(job: Job): void {
    if (this.indexes(job)) this.queuedByHash.delete(job.hash)
  }

  private enqueue(job: Job, lane = this.lane(job.lane)): void {
    if (this.indexes(job)) this.queuedByHash.set(job.hash, job)
    lane.ready.push(job)
  }

  /** A ready job by hash: from the index, or (a hash derived from its number) by its number. */
  private findReady(hash: string): Job | undefined {
    const indexed = this.queuedByHash.get(hash)
    if (indexed !== undefined) return indexed
    const jobNum = hashSchemes.of(hash)?.jobNumOf(hash)
    if (jobNum === undefined) return undefined
    const job = this.readyByNumber(jobNum)
    return job?.hash === hash ? job : undefined
  }

  /** A ready job by number, on any lane: a binary search of each lane's priorities. */
  private readyByNumber(jobNum: number): Job | undefined {
    for (const lane of this.lanes.values()) {
      const job = lane.ready.find(jobNum)
      if (job !== undefined) return job
    }
    return undefined
  }
}

/** Ready jobs (parts in serving order) and some others, merged into one list in serving order. */
function mergeInOrder(parts: Job[][], others: Job[]): Job[] {
  others.sort(compareJobs)
  const out: Job[] = []
  let o = 0
  for (const part of parts) {
    for (const job of part) {
      while (o < others.length && compareJobs(others[o]!, job) < 0) out.push(others[o++]!)
      out.push(job)
    }
  }
  while (o < others.length) out.push(others[o++]!)
  return out
}

import { ApiError } from '../errors'
import type { JournalStats } from '../persist/journal'
import type { CronRecord } from '../queue/cron-table'
import type { Held } from '../queue/held'
import type { Job, RunReport } from '../queue/job'
import type { JobPage, PageQuery } from '../queue/pages'
import type { FoundJob, LaneCounts, LaneSnapshot, ScheduleInput } from '../queue/queue'
import type { UniqueHold } from '../queue/unique'
import { Durable } from './durable'

/**
 * The seam between the job service (policy: limits, receivers, runner lanes, replies) and where
 * jobs are kept. The in-memory store answers every call at once, with plain values; a store over
 * the network (Redis) answers with promises. `Maybe` lets one interface serve both without making
 * the in-memory path pay for a promise per request.
 */
export type Maybe<T> = T | Promise<T>

export function isPromise<T>(value: Maybe<T>): value is Promise<T> {
  return typeof (value as { then?: unknown } | null)?.then === 'function'
}

/**
 * Calls `next` with the value once it is there: at once for a plain value, on resolution for a
 * promise. A throw (or rejection) goes to `failed`.
 */
export function when<T>(value: Maybe<T>, next: (value: T) => void, failed: (err: unknown) => void): void {
  if (!isPromise(value)) {
    try {
      next(value)
    } catch (err) {
      failed(err)
    }
    return
  }
  // A journaled change's value: its callbacks run when the journal reports, with no microtask.
  if (value instanceof Durable) {
    value.listen(next, failed)
    return
  }
  // One reaction that catches `next`'s throw itself: `then(next).catch(failed)` made two more
  // promises and two more microtasks, for every reply that waits (each one, with a journal).
  value.then((resolved) => {
    try {
      next(resolved)
    } catch (err) {
      failed(err)
    }
  }, failed)
}

/** `f` applied to the value once it is there: at once for a plain value (so the in-memory path stays synchronous). */
export function then<T, R>(value: Maybe<T>, f: (value: T) => Maybe<R>): Maybe<R> {
  return isPromise(value) ? value.then(f) : f(value)
}

/** The reply to a request that names a lane no job was ever scheduled to. */
export function noSuchLane(lane: string): ApiError {
  return new ApiError('invalid_data', `no lane is named ${JSON.stringify(lane)}`)
}

/** What the limits count: every job kept (ready, leased, delayed, dead) and its message bytes. */
export interface Usage {
  jobs: number
  bytes: number
  lanes: number
  dead: number
}

/** A job handed over: for good, or under a lease (its deadline and token). */
export interface Taken {
  job: Job
  lease: Held | undefined
}

/** What the reaper found past its deadline. */
export interface Expired {
  /** Leases that ran out: these jobs are back in their lanes. */
  leases: Job[]
  /** Lanes that got ready jobs back (expired leases, delays over). */
  lanes: Set<string>
}

export type { LaneCounts } from '../queue/queue'

/** What `GET /metrics` shows of how the store keeps jobs; a store leaves out what it does not have. */
export interface StoreStats {
  /** Which store: "memory", "redis", … */
  kind: string
  /** A store over the network: whether it can be reached now. */
  reachable?: boolean
  snapshot?: {
    /** Milliseconds since the epoch; null before the first. */
    lastSavedAt: number | null
    lastDurationMs: number | null
    lastJobs: number | null
    lastBytes: number | null
    errors: number
  }
  journal?: JournalStats & { generation: number; broken: boolean }
}

/**
 * Where jobs are kept. Each change is made in full or not at all (an ApiError says why not);
 * `whenDurable` tells when the changes made so far would survive a crash. No limits, no receivers:
 * those are the service's.
 */
export interface JobStore {
  /** Which store this is: what a request it does not offer names (code 15). */
  readonly kind: 'memory' | 'redis'
  /**
   * True for a store whose calls return plain values (in memory): a receive finds out at once
   * whether a job is ready. False for a store over the network: its calls return promises, and
   * `hasReady` is only a hint.
   */
  readonly answersAtOnce: boolean
  /** Whether `lane` exists (a job was scheduled to it, or it was declared or restored). */
  hasLane(lane: string): boolean
  /**
   * Whether `lane` may have a job ready now. Exact in memory; over the network a hint (what this
   * process last saw, and wake-ups since): it may say yes and be wrong, and `take` is the authority.
   */
  hasReady(lane: string): boolean
  /**
   * How the groups of a lane share each priority: weighted round-robin, a group's turn giving up to
   * its weight in jobs (unnamed groups, and jobs without a group, weigh 1). The service sets it from
   * the lanes' `group_weights`; undefined: every group weighs 1. Applies from the next take.
   */
  setGroupWeights(lane: string, weights: Readonly<Record<string, number>> | undefined): void
  /** Makes a lane known; runner lanes' jobs are also found by hash in every state. */
  declareLane(lane: string, runner: boolean): void
  usage(): Usage
  readonly nextJobNum: number

  /** Queues `inputs` in order, with consecutive job numbers. */
  schedule(inputs: readonly ScheduleInput[]): Maybe<Job[]>
  /**
   * As `schedule`, for inputs that may carry a unique key (`input.unique`), as one atomic change:
   * an input whose key is held on its lane is not queued, and its place in the answer holds the
   * hold instead (the job that has the key: queued, leased, running or delayed, or finished less
   * than its `unique.forMs` ago), an earlier input of the same call included. A key is held from
   * schedule until the job is taken for good, acked, succeeded or dead, then for `forMs` more;
   * deleting the job frees it. Holds survive restarts. (Over Redis: a hash per lane and key, set
   * with the job in one script, given a TTL when the job finishes.)
   */
  scheduleUnique(inputs: readonly ScheduleInput[]): Maybe<(Job | UniqueHold)[]>
  /**
   * Takes the lane's next ready job, for good or under a lease of `leaseMs`; undefined when none is
   * ready. `waiting` is set when the take is for a parked receiver: how many more receivers of this
   * process still wait on the lane. A store shared by several processes then registers this one as
   * waiting when the lane is empty (in the same step, so no wake-up is lost) and calls the
   * `onWork` listener when a job arrives. The in-memory store ignores it.
   */
  take(lane: string, leaseMs: number | undefined, waiting?: number): Maybe<Taken | undefined>
  /**
   * Takes up to `count` of the lane's ready jobs in serving order (each under its own lease). For
   * a parked batch receiver (`waiting` set, as for `take`), a store over the network takes
   * nothing unless at least `min` are ready, and registers this process as waiting then; the
   * in-memory store ignores both (the service checks `readyCount` first).
   */
  takeMany(lane: string, leaseMs: number | undefined, count: number, min?: number, waiting?: number): Maybe<Taken[]>
  /** How many jobs of `lane` are ready now (a store over the network answers from a count up to a second old). */
  readyCount(lane: string): number
  /** A job whose hand-over failed goes back, if that hand-over is still its latest (see Queue). */
  returnUndelivered(taken: Taken): Maybe<boolean>
  /** `result` (JSON text): the job is kept as succeeded, with it, for its lane's keep_finished; without, it is gone. */
  ack(hash: string, token: string, result?: string): Maybe<Job>
  release(hash: string, token: string, delayMs: number): Maybe<Job>
  touch(hash: string, token: string, leaseMs: number | undefined): Maybe<Held>
  /** Runner lanes: the run under `lease` succeeded, failed for good, or is to be tried again. */
  complete(lease: Held, report: RunReport, result?: string): Maybe<Job>
  bury(lease: Held, report: RunReport): Maybe<Job>
  retryLater(lease: Held, delayMs: number): Maybe<Job>
  retryDead(hash: string): Maybe<Job>
  delete(hash: string): Maybe<Job>

  /** A job by hash, on any lane and in any state (a queued one with its position in its lane). */
  find(hash: string): Maybe<FoundJob | undefined>
  /** The same by job number. */
  findByNumber(jobNum: number): Maybe<FoundJob | undefined>
  /** A page of one lane's jobs in one state, searched and sorted (see queue/pages.ts); never O(all jobs) for ready ones. */
  page(query: PageQuery): Maybe<JobPage>
  /** Moves a ready or delayed job to `lane` at `priority`, keeping its number and hash (ApiError: leased, running, dead, unknown). Journaled. */
  relocate(hash: string, lane: string, priority: number): Maybe<Job>
  /** Pauses or resumes a lane; kept across restarts (journaled, and in the snapshot). */
  setPaused(lane: string, paused: boolean): Maybe<void>
  /**
   * Lanes paused. Exact in memory, where the service holds their jobs back itself; a store shared by
   * several processes keeps the flag with the lane and its takes honour it in the same step (so a
   * pause holds on every process at once), and answers this from what it read at most a second ago.
   */
  pausedLanes(): ReadonlySet<string>
  deadJobs(lane: string, offset: number, limit: number): Maybe<{ total: number; jobs: Job[] }>
  /** Every lane with its ready jobs in serving order, as of now (GET /jobs streams it). */
  readyJobs(): Maybe<LaneSnapshot[]>
  /**
   * Per-lane counts (ready, leased, delayed, dead) and oldest ready job, from counters: O(lanes),
   * never O(jobs). Exact in memory; from a store over the network, as of at most a second ago.
   */
  counts(): LaneCounts
  laneNames(): string[]
  leasedJobs(): number
  /** Unique keys held now, by jobs here and by finished ones. */
  uniqueKeysHeld(): number
  finishedForgotten(): number

  /**
   * Cron entries' records (src/service/cron.ts decides when they fire): kept, snapshotted and
   * journaled with the jobs, so a firing's job and the record of its slot are one change together.
   */
  cronRecords(): Maybe<CronRecord[]>
  /** Adds or replaces a cron entry's record. */
  saveCron(record: CronRecord): Maybe<void>
  deleteCron(name: string): Maybe<void>

  /** The earliest lease or delay deadline (ms since the epoch), if any. */
  nextDeadline(): number | undefined
  /** Calls `listener` whenever a new earliest deadline is set. */
  onDeadline(listener: (at: number) => void): void
  expireDue(now: number): Maybe<Expired>

  /** Runs `callback` once every change made so far is durable (at once for a store without a journal). */
  whenDurable(callback: (err: Error | undefined) => void): void
  /**
   * Writes the changes made so far now rather than at the end of the turn: those whose callbacks
   * wait only for a write hear at once (nothing to do for a store without a journal).
   */
  writeNow(): void
  /** Set while changes cannot be made durable: they are refused. */
  readonly broken: Error | undefined
  /** Whether replies to changes must wait for `whenDurable` (a journal). */
  readonly defersReplies: boolean
  /** What `GET /` shows of the store (snapshot, journal; a network store's connection). */
  status(): Record<string, unknown>
  /** What `GET /metrics` shows of it: counters kept as it works, read at once. */
  stats(): StoreStats

  /**
   * A store shared by several processes: `listener(lane)` is called when the lane may have work
   * this process was not told of by its own calls (another process scheduled, a deadline passed,
   * the periodic re-poll). It drains the lane and returns whether receivers still wait on it here.
   */
  onWork?(listener: (lane: string) => boolean): void
  /** Set while a store over the network cannot serve `lane` (without one: while it cannot be reached at all): the error a parked receiver's timeout there answers. */
  unavailable?(lane?: string): ApiError | undefined

  /**
   * A store shared by several processes: how the job a schedule with `watchMs` was told to watch
   * ended, when it was finished by any process (undefined: not yet). A process sees its own
   * finishes as events; this is how it learns of the others'.
   */
  waitedEnd?(hash: string): Promise<{ job: Job; state: 'succeeded' | 'dead' | 'taken' | 'deleted' } | undefined>
  /** Nobody here waits for that job any more. */
  unwatch?(hash: string): void
}

/** The answer to a request `store` does not offer (code 15, HTTP 501): names what and where it is offered. */
export function notOffered(what: string, store: JobStore['kind']): ApiError {
  return new ApiError('not_supported', `${what} is not offered by store "${store}"; store "memory" offers it`)
}

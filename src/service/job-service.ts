import type { DeadlineTimer } from '../deadlines'
import { ApiError } from '../errors'
import type { Logger } from '../log'
import type { Held } from '../queue/held'
import { Job, type RunReport } from '../queue/job'
import { type LaneSnapshot, type ScheduleInput, byLaneName } from '../queue/queue'
import type { UniqueHold } from '../queue/unique'
import { Durable } from '../store/durable'
import { type JobStore, type LaneCounts, type Maybe, type StoreStats, type Taken, isPromise, then, when } from '../store/job-store'
import { journalFailed } from './commit'
import { JobAdmin } from './admin'
import { EventStream } from './events'
import { type QueueLimits, admit } from './limits'
import { DrainRates } from './rates'
import type { Receiver } from './receiver'
import { ParkedReceivers } from './receivers'
import { BackgroundTasks } from './tasks'
import { type FinishWaiter, FinishWaiters } from './waiters'
import { RateLimits } from './rate-limits'
import { DEFAULT_LANE_SETTINGS, type LaneSettings, type LaneSettingsByName } from './lane-settings'

/** A schedule's input whose unique key may leave its `forMs` to the lane's `unique_for`. */
export type UniqueScheduleInput = Omit<NewJob, 'unique'> & { unique?: { key: string; forMs: number | undefined } }

/** What a schedule with unique keys did with each input: queued it, or found its key held. */
export type Scheduled = Job | UniqueHold

/** What the service needs to know of runner lanes (the dispatcher answers). */
export interface LanePolicy {
  runnerOf(lane: string): string | undefined
  /**
   * Throws ApiError when `message` does not fit the lane's runner and arguments, or came as
   * top-level `arguments` (`fromArguments`) to a lane without a runner.
   */
  checkMessage(lane: string, message: string, fromArguments: boolean): void
  /** Stops the running job with this hash for good (it fails and is dead); whether it was running. */
  kill?(hash: string): boolean
}

/** A job to schedule; `fromArguments` when the client sent top-level `arguments` (runner lanes only). */
export interface NewJob extends ScheduleInput {
  fromArguments?: true
}

/** `/ack`, `/release` and `/touch` name a lease by its job's hash and the token it was given with. */
export interface LeaseCommand {
  hash: string
  token: string
  /** release: put the job back after this long; touch: the lease's new length. */
  ms: number | undefined
  /** ack: what the consumer returns (JSON text), shown by GET /job while the job is kept. */
  result?: string
}

/** Ready, parked, leased, delayed and dead counts by lane, and oldest ready jobs (objects without a prototype). */
export interface LaneStats extends LaneCounts {
  /** Receivers parked on each lane (idle runner slots too). */
  idle: Record<string, number>
}

export interface JobServiceOptions {
  store: JobStore
  logger: Logger
  limits: QueueLimits
  /** Milliseconds since the epoch (deadlines); injected so tests control time. */
  clock?: () => number
}

/**
 * The job service: what the daemon decides about jobs, above where they are kept (Faktory's
 * manager over its storage). It owns the limits, the runner lanes' policy, the receivers parked on
 * each lane and their wake-ups (kept by ParkedReceivers, receivers.ts), the one commit path (a
 * reply that reports a change goes out once that change is durable), the event stream and the
 * named background tasks. HTTP handlers and runner lanes talk to it only; it talks to the store
 * only.
 *
 * With the in-memory store every call completes synchronously and returns plain values; with a
 * store over the network the same calls return promises (`Maybe`).
 */
export class JobService {
  readonly events = new EventStream()
  private readonly waiters: FinishWaiters
  /** Lanes' rate limits (the parked receivers' drain spends their tokens too). */
  private readonly rates = new RateLimits()
  readonly tasks: BackgroundTasks
  /** Each lane's recent drain rate, for ETAs (sampled by a task main.ts starts). */
  readonly drainRates = new DrainRates()
  /** What operators do to jobs and lanes beyond the original's API: find, page, move, pause, kill, bulk. */
  readonly admin: JobAdmin
  private readonly store: JobStore
  private readonly logger: Logger
  private limits: QueueLimits
  private lanes: LanePolicy | undefined
  private laneSettings: LaneSettingsByName = Object.create(null) as LaneSettingsByName
  /** The receivers parked on each lane and their wake-ups (the drain), see receivers.ts. */
  private readonly parked: ParkedReceivers
  private readonly clock: () => number
  private readonly deadlines: DeadlineTimer

  constructor(options: JobServiceOptions) {
    this.store = options.store
    this.logger = options.logger
    this.limits = options.limits
    this.clock = options.clock ?? Date.now
    this.parked = new ParkedReceivers({
      store: this.store,
      events: this.events,
      rates: this.rates,
      logger: this.logger,
      clock: this.clock,
      service: {
        holdsBack: (lane) => this.holdsBack(lane),
        batchReady: (lane, min) => this.batchReady(lane, min),
        hasReady: (lane) => this.hasReady(lane),
      },
    })
    this.tasks = new BackgroundTasks(options.logger)
    this.waiters = new FinishWaiters(this.events, (hash) => this.store.unwatch?.(hash))
    // A store shared by several processes: a waited job may finish in another one.
    if (this.store.waitedEnd !== undefined) this.tasks.add('waited jobs', () => this.pollWaited()).every(WAITED_POLL_MS)
    this.deadlines = this.tasks.onDeadlines('lease and delay reaper', () => this.reap(), () => this.store.nextDeadline(), this.clock)
    this.store.onDeadline((at) => this.deadlines.arm(at))
    const next = this.store.nextDeadline()
    if (next !== undefined) this.deadlines.arm(next)
    this.events.subscribe(this.drainRates)
    this.admin = new JobAdmin({
      store: this.store,
      events: this.events,
      rates: this.drainRates,
      logger: this.logger,
      lanes: () => this.lanes,
      limits: () => this.limits,
      drain: (lane) => this.parked.drain(lane),
      durable: (value, failure) => this.durable(value, failure),
    })
    // A store shared with other processes tells of work they made (and of deadlines it keeps).
    this.store.onWork?.((lane) => {
      this.parked.drain(lane)
      return this.parked.wanted(lane)
    })
  }

  /** Whether receives learn at once if a job is ready (the in-memory store). */
  get answersAtOnce(): boolean {
    return this.store.answersAtOnce
  }

  /** Set while a store over the network cannot serve `lane`: what a parked receiver whose wait ends there is answered. */
  unavailable(lane?: string): ApiError | undefined {
    return this.store.unavailable?.(lane)
  }

  /** Which lanes runners serve (the dispatcher, made after the service). */
  setLanePolicy(lanes: LanePolicy): void {
    this.lanes = lanes
  }

  /** New limits (a reload); they apply to requests from now on. */
  setLimits(limits: QueueLimits): void {
    this.limits = limits
  }

  /** Set while changes cannot be made durable: they are refused. */
  get broken(): Error | undefined {
    return this.store.broken
  }

  /** Writes the changes made so far now (the journal's), so replies that wait only for that write go out at once. */
  writeNow(): void {
    this.store.writeNow()
  }

  /** Stops the timers and tasks (shutdown). */
  stop(): void {
    this.parked.stop()
    this.deadlines.stop()
    this.tasks.stopAll()
  }

  /** Runner lanes hand their jobs to runners only. */
  refuseRunnerLane(lane: string): void {
    const runner = this.lanes?.runnerOf(lane)
    if (runner !== undefined) throw new ApiError('conflict', `lane ${JSON.stringify(lane)} is served by the ${runner} runner; its jobs are not handed to receivers`)
  }

  /**
   * Queues the jobs (all or none: a batch breaking a limit or with one bad message queues nothing);
   * resolves to them once they are durable. Parked receivers of their lanes get them at once.
   * `checked`: the messages were checked by their own intake (Dispatch Jobs), not the lane's rules.
   */
  schedule(inputs: readonly NewJob[], batch: boolean, options?: { checked?: boolean }): Maybe<Job[]> {
    this.admit(inputs, batch, options?.checked === true)
    const jobs = this.store.schedule(inputs)
    // Not `then`: a closure per schedule, for the store that answers at once.
    return isPromise(jobs) ? jobs.then((queued) => this.scheduled(queued, batch)) : this.scheduled(jobs, batch)
  }

  /**
   * As `schedule`, for jobs that may carry a unique key: one whose key is held on its lane is not
   * queued, and its place in the answer is the hold (see JobStore.scheduleUnique). A key given
   * without `forMs` is held for the lane's `unique_for`.
   */
  scheduleUnique(requested: readonly UniqueScheduleInput[], batch: boolean, options: { checked?: boolean; beforeDrain?: (outcomes: Scheduled[]) => void } = {}): Maybe<Scheduled[]> {
    const inputs = requested.map((input): NewJob => {
      const { unique } = input
      if (unique === undefined || unique.forMs !== undefined) return input as NewJob
      return { ...input, unique: { key: unique.key, forMs: this.settingsOf(input.lane).uniqueForMs } }
    })
    this.admit(inputs, batch, options.checked === true)
    return then(this.store.scheduleUnique(inputs), (outcomes) => {
      options.beforeDrain?.(outcomes)
      const jobs = outcomes.filter((outcome): outcome is Job => outcome instanceof Job)
      if (jobs.length > 0) return then(this.scheduled(jobs, batch), () => outcomes)
      // Nothing queued: the answer names the jobs holding the keys, whose own records may still be
      // on their way to disk (a schedule answered a moment ago, or not yet): it waits for them too.
      return this.durable(outcomes, () => 'nothing was queued, and the jobs holding the keys may be kept in memory only, until the next snapshot')
    })
  }

  /**
   * Schedules one job (its unique key held or not) and calls `waiter` once it finishes: the waiter
   * is in place before any receiver can take the job. A key held by a job still queued or out
   * waits for that job. Resolves, once durable, to the job or the hold; `stopWaiting` undoes it.
   */
  scheduleAndWait(input: UniqueScheduleInput, waiter: FinishWaiter): Maybe<Scheduled> {
    const watch = ([outcome]: Scheduled[]): void => {
      if (outcome instanceof Job || outcome!.active) this.waiters.add(outcome!.jobNum, outcome!.hash, waiter)
    }
    return then(this.scheduleUnique([input], false, { beforeDrain: watch }), ([outcome]) => outcome!)
  }

  stopWaiting(jobNum: number, waiter: FinishWaiter): void {
    this.waiters.remove(jobNum, waiter)
  }

  /** Asks the shared store how each waited job ended (those finished here were told by events). */
  private async pollWaited(): Promise<void> {
    const watched = this.waiters.watched()
    if (watched.length === 0) return
    const ends = await Promise.all(watched.map(([, hash]) => this.store.waitedEnd!(hash).catch(() => undefined)))
    for (const end of ends) if (end !== undefined) this.waiters.finish(end.job, end.state)
  }

  /** Lane settings from the config file (at start and on a reload). */
  setLaneSettings(settings: LaneSettingsByName): void {
    this.rates.configure(settings, this.clock())
    for (const lane of Object.keys(this.laneSettings)) if (settings[lane]?.groupWeights === undefined) this.store.setGroupWeights(lane, undefined)
    for (const [lane, { groupWeights }] of Object.entries(settings)) if (groupWeights !== undefined) this.store.setGroupWeights(lane, groupWeights)
    this.laneSettings = settings
  }

  /** How long a consumer lane keeps a job acked with a result. */
  keepFinishedMs(lane: string): number {
    return this.settingsOf(lane).keepFinishedMs
  }

  private settingsOf(lane: string): LaneSettings {
    return this.laneSettings[lane] ?? DEFAULT_LANE_SETTINGS
  }

  /** Checks messages against their lanes' runners, then the limits; throws ApiError. */
  private admit(inputs: readonly NewJob[], batch: boolean, checked: boolean): void {
    const lanes = this.lanes
    if (lanes !== undefined && !checked) {
      // A plain loop: two closures per job were made here for every schedule.
      for (let i = 0; i < inputs.length; i++) {
        const input = inputs[i]!
        try {
          lanes.checkMessage(input.lane, input.message, input.fromArguments === true)
        } catch (err) {
          throw batch ? atEntry(i, err) : err
        }
      }
    }
    admit(inputs, batch, this.limits, this.store)
  }

  /** Jobs just queued: told, handed to parked receivers, answered once durable. */
  private scheduled(jobs: Job[], batch: boolean): Maybe<Job[]> {
    for (const job of jobs) this.events.emit('scheduled', job)
    let lane: string | undefined
    for (const job of jobs) {
      if (job.lane === lane) continue
      lane = job.lane
      this.parked.drain(lane)
    }
    // Replies that go out at once need no failure message: no closure for it.
    if (!this.store.defersReplies) return jobs
    const first = jobs[0]!.jobNum
    const last = jobs[jobs.length - 1]!.jobNum
    return this.durable(jobs, () => (batch ? `jobs ${first}-${last} are` : `job ${first} is`) + ' queued in memory only, until the next snapshot')
  }

  /**
   * Takes the lane's next job, for good or leased; resolves once the take is durable (undefined
   * when the lane has none ready). If the reply then cannot be sent, call `undelivered`.
   */
  receive(lane: string, leaseMs: number | undefined): Maybe<Taken | undefined> {
    this.refuseRunnerLane(lane)
    if (this.holdsBack(lane)) return undefined
    // Out of tokens: nothing to take now (a blocking receive waits for the next token).
    if (this.rates.active && this.store.hasReady(lane) && this.rates.grant(lane, 1, this.clock()) === 0) return undefined
    const taken = this.store.take(lane, leaseMs)
    // Not `then`: a closure per receive, for the store that answers at once.
    if (isPromise(taken)) return taken.then((t) => (t === undefined ? undefined : this.handOver(t)))
    return taken === undefined ? undefined : this.handOver(taken)
  }

  /**
   * Takes up to `count` of the lane's jobs in serving order, each for good or under its own lease;
   * resolves once every take is durable (an empty list when none is ready, or the lane is paused).
   */
  receiveMany(lane: string, leaseMs: number | undefined, count: number): Maybe<Taken[]> {
    this.refuseRunnerLane(lane)
    if (this.holdsBack(lane)) return []
    if (this.rates.active) count = this.rates.grant(lane, Math.min(count, this.store.readyCount(lane)), this.clock())
    if (count === 0) return []
    return then(this.store.takeMany(lane, leaseMs, count), (taken) => {
      this.events.emitTaken(taken)
      if (taken.length === 0 || !this.store.defersReplies) return taken
      // A Durable, as handOver's: the reply goes out in the journal's callback, with no promise.
      const later = new Durable(taken)
      this.store.whenDurable((err) => {
        if (err === undefined) return later.settle()
        for (const t of taken) this.parked.putBack(t, 'journal failed')
        later.settle(journalFailed(err, 'the jobs stay queued'))
      })
      return later
    })
  }

  /**
   * Whether a batch receive waiting for `min` jobs can take them now: that many are ready, the lane
   * is not paused, and a rate-limited lane has the tokens (see RateLimits.has).
   */
  batchReady(lane: string, min: number): boolean {
    if (this.holdsBack(lane) || this.store.readyCount(lane) < min) return false
    return !this.rates.active || this.rates.has(lane, min, this.clock())
  }

  /** Whether the lane may have a job ready now (a paused lane has none to hand out). */
  hasReady(lane: string): boolean {
    return !this.holdsBack(lane) && this.store.hasReady(lane)
  }

  /** A job taken by `receive` whose reply could not be sent: it goes back, if that hand-over is still its latest. */
  undelivered(taken: Taken): void {
    this.parked.putBack(taken, 'receiver disconnected')
  }

  /**
   * Parks a receiver on a lane (a lane that does not exist yet too: a receive never creates one);
   * it gets a job at once if one is ready. Clients past max_parked_receivers are refused (ApiError).
   */
  awaitJob(lane: string, receiver: Receiver): void {
    if (receiver.countsAsParked !== false) this.refuseRunnerLane(lane)
    this.parked.park(lane, receiver, this.limits.maxParkedReceivers)
  }

  /** Removes a parked receiver (its client went away, its timeout passed). Returns whether it was parked. */
  cancel(lane: string, receiver: Receiver): boolean {
    return this.parked.cancel(lane, receiver)
  }

  /** Removes every parked receiver and dismisses it; for shutdown. */
  dismissAll(): void {
    this.parked.dismissAll()
  }

  get parkedReceivers(): number {
    return this.parked.count
  }

  /**
   * A consumer is done with the job it leased under `token`: gone for good once durable, or, with
   * a `result` (JSON text), kept as succeeded with it for the lane's keep_finished.
   */
  ack(hash: string, token: string, result?: string, durable = true): Maybe<Job> {
    if (result !== undefined) this.checkResultSize(result, '"result"')
    return then(this.store.ack(hash, token, result), (job) => {
      this.events.emit('acked', job)
      return durable ? this.durable(job, () => `job ${job.jobNum} is acked in memory only, until the next snapshot`) : job
    })
  }

  /** A consumer gives the job it leased back: to its place now, or after `delayMs`. */
  release(hash: string, token: string, delayMs: number, durable = true): Maybe<Job> {
    return then(this.store.release(hash, token, delayMs), (job) => {
      this.events.emit('released', job, delayMs)
      if (delayMs <= 0) this.parked.drain(job.lane)
      return durable ? this.durable(job, () => `job ${job.jobNum} is released in memory only, until the next snapshot`) : job
    })
  }

  /**
   * Batches of ack, release or touch: each command is answered on its own (the job, or the
   * ApiError it met); the reply waits for the records of all of them.
   */
  ackMany(commands: readonly LeaseCommand[]): Maybe<(Job | ApiError)[]> {
    return this.each(commands, (c) => this.ack(c.hash, c.token, c.result, false))
  }

  releaseMany(commands: readonly LeaseCommand[]): Maybe<(Job | ApiError)[]> {
    return this.each(commands, (c) => this.release(c.hash, c.token, c.ms ?? 0, false))
  }

  /** Touches are not journaled (see touch): answered at once, as a single touch is, the journal broken or not. */
  touchMany(commands: readonly LeaseCommand[]): Maybe<(Held | ApiError)[]> {
    return this.each(commands, (c) => this.touch(c.hash, c.token, c.ms), false)
  }

  /** Runs `one` for each command, keeping each ApiError as that command's answer; durable once for all (when `journaled`). */
  private each<T>(commands: readonly LeaseCommand[], one: (command: LeaseCommand) => Maybe<T>, journaled = true): Maybe<(T | ApiError)[]> {
    const results: Maybe<T | ApiError>[] = commands.map((command) => {
      try {
        const result = one(command)
        return isPromise(result) ? result.catch((err: unknown) => apiErrorOrThrow(err)) : result
      } catch (err) {
        return apiErrorOrThrow(err)
      }
    })
    const all = results.some(isPromise) ? Promise.all(results) : (results as (T | ApiError)[])
    if (!journaled) return all
    return then(all, (answers) => this.durable(answers, () => `the changes of this batch are made in memory only, until the next snapshot`))
  }

  /** Extends a lease (not journaled: a restart ends every lease anyway). */
  touch(hash: string, token: string, leaseMs: number | undefined): Maybe<Held> {
    return this.store.touch(hash, token, leaseMs)
  }

  retryDead(hash: string): Maybe<Job> {
    return then(this.store.retryDead(hash), (job) => {
      this.events.emit('retried', job)
      this.parked.drain(job.lane)
      return this.durable(job, () => `job ${job.jobNum} is queued again in memory only, until the next snapshot`)
    })
  }

  delete(hash: string): Maybe<Job> {
    return then(this.store.delete(hash), (job) => {
      this.events.emit('deleted', job)
      return this.durable(job, () => `job ${job.jobNum} is deleted in memory only, until the next snapshot`)
    })
  }

  /** Runner lanes: the run under `lease` succeeded, returning `result` (any JSON value) if anything. */
  complete(lease: Held, report: RunReport, result?: unknown): Maybe<Job> {
    let json: string | undefined
    try {
      json = result === undefined ? undefined : JSON.stringify(result)
      if (json !== undefined) this.checkResultSize(json, 'the run\'s result')
    } catch (err) {
      // The run succeeded all the same: its result is dropped, and its report says why.
      report = { ...report, output: `${report.output}\n[dispenserd: result dropped: ${(err as Error).message}]`.slice(-4096) }
      json = undefined
    }
    return then(this.store.complete(lease, report, json), (job) => {
      this.events.emit('succeeded', job)
      return job
    })
  }

  private checkResultSize(json: string, what: string): void {
    const max = this.limits.maxResultBytes
    const bytes = Buffer.byteLength(json)
    if (max > 0 && bytes > max) throw new ApiError('invalid_data', `${what} is ${bytes} bytes of JSON, over max_result_bytes (${max})`)
  }

  /** Runner lanes: the run under `lease` failed with no retries left. */
  bury(lease: Held, report: RunReport): Maybe<Job> {
    return then(this.store.bury(lease, report), (job) => {
      this.events.emit('dead', job)
      return job
    })
  }

  /** Runner lanes: the run under `lease` is to be tried again after `delayMs` (0: at once). */
  retryLater(lease: Held, delayMs: number): Maybe<Job> {
    return then(this.store.retryLater(lease, delayMs), (job) => {
      if (delayMs <= 0) this.parked.drain(job.lane)
      return job
    })
  }


  deadJobs(lane: string, offset: number, limit: number): Maybe<{ total: number; jobs: Job[] }> {
    return this.store.deadJobs(lane, offset, limit)
  }

  readyJobs(): Maybe<LaneSnapshot[]> {
    return this.store.readyJobs()
  }

  /** Counts by lane for `GET /`: from counters, never by walking the jobs. */
  laneStats(): LaneStats {
    const counts = this.store.counts()
    const idle = byLaneName()
    for (const lane of Object.keys(counts.queued)) idle[lane] = 0
    this.parked.countByLane(idle)
    return { ...counts, idle }
  }

  /** Totals for `GET /`'s server block. */
  totals(): { next_job_num: number; queued_jobs_total: number; queued_bytes: number; parked_receivers: number; leased_jobs_total: number; unique_keys_held: number; waited_jobs: number; dead_jobs_total: number; finished_jobs_forgotten: number } {
    const usage = this.store.usage()
    return {
      next_job_num: this.store.nextJobNum,
      queued_jobs_total: usage.jobs,
      queued_bytes: usage.bytes,
      parked_receivers: this.parked.count,
      leased_jobs_total: this.store.leasedJobs(),
      unique_keys_held: this.store.uniqueKeysHeld(),
      waited_jobs: this.waiters.size,
      dead_jobs_total: usage.dead,
      finished_jobs_forgotten: this.store.finishedForgotten(),
    }
  }

  /** The limits in force (a reload changes them), as `GET /` shows them. */
  limitsInForce(): Record<string, number> {
    const l = this.limits
    return { max_queued_jobs: l.maxQueuedJobs, max_queued_bytes: l.maxQueuedBytes, max_message_bytes: l.maxMessageBytes, max_lanes: l.maxLanes, max_parked_receivers: l.maxParkedReceivers }
  }

  /** What `GET /metrics` shows of the store. */
  storeStats(): StoreStats {
    return this.store.stats()
  }

  /** Lanes paused by an operator: they serve no receiver and start no run. */
  pausedLanes(): ReadonlySet<string> {
    return this.store.pausedLanes()
  }

  /**
   * Whether the service holds the lane's jobs back itself: a paused lane in memory. A store shared
   * by several processes keeps the pause with the lane and its takes honour it in the same step,
   * so a pause or resume on any of them holds here at once, whatever this process last read.
   */
  private holdsBack(lane: string): boolean {
    return this.store.answersAtOnce && this.store.pausedLanes().has(lane)
  }

  /** What `GET /` shows of the store and the background tasks. */
  status(): Record<string, unknown> {
    return { ...this.store.status(), tasks: this.tasks.status() }
  }

  /**
   * Throws ApiError when `message` cannot be scheduled on `lane` (its runner's arguments, a Dispatch
   * lane): for what schedules jobs later (cron entries), checked when it is set up.
   */
  checkMessage(lane: string, message: string): void {
    this.lanes?.checkMessage(lane, message, false)
  }

  /** The one commit path: `value` once the change just made is durable; a journal failure rejects with `failure()`. */
  durable<T>(value: T, failure: () => string): Maybe<T> {
    if (!this.store.defersReplies) return value
    const later = new Durable(value)
    this.store.whenDurable((err) => later.settle(err === undefined ? undefined : journalFailed(err, failure())))
    return later
  }

  /** A take's hand-over, through the commit path; a failure puts the job back. */
  private handOver(taken: Taken): Maybe<Taken> {
    this.events.emit('taken', taken.job, taken.lease)
    if (!this.store.defersReplies) return taken
    const later = new Durable(taken)
    this.store.whenDurable((err) => {
      if (err === undefined) return later.settle()
      this.parked.putBack(taken, 'journal failed')
      later.settle(journalFailed(err, 'the job stays queued'))
    })
    return later
  }

  /**
   * Resolves once the takes for receivers and the put-backs under way have ended: at shutdown,
   * before the store closes, so a job taken for a receiver that was dismissed meanwhile goes back.
   */
  settle(): Promise<void> {
    return this.parked.settle()
  }

  /** The lease and delay reaper: jobs past their deadline go back to their lanes, to waiting receivers. */
  private reap(): void {
    when(
      this.store.expireDue(this.clock()),
      ({ leases, lanes }) => {
        for (const job of leases) this.events.emit('expired', job)
        for (const lane of lanes) this.parked.drain(lane)
      },
      (err: unknown) => this.logger.error({ err }, 'expiring leases and delays failed'),
    )
  }
}

/** How often a shared store is asked whether waited jobs finished in another process. */
const WAITED_POLL_MS = 200

/** An ApiError as a batch item's answer; anything else is a fault of the whole request. */
function apiErrorOrThrow(err: unknown): ApiError {
  if (err instanceof ApiError) return err
  throw err
}

/** A batch entry's error: an ApiError's message prefixed with the entry it is about; anything else as it is. */
function atEntry(i: number, err: unknown): unknown {
  return err instanceof ApiError ? new ApiError(err.codeName, `jobs[${i}]: ${err.message}`) : err
}

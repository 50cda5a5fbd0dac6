import { ApiError } from '../errors'
import type { Logger } from '../log'
import type { Held } from '../queue/held'
import type { Job, RunReport } from '../queue/job'
import type { JobService } from '../service/job-service'
import type { Receiver } from '../service/receiver'
import { type Maybe, when } from '../store/job-store'
import { parseRunnerMessage } from './arguments'
import type { RunnerLane } from './lanes'
import { type RunResult, type Runner, checkResult } from './runner'

/**
 * Runs the jobs of runner lanes. Each lane has `concurrency` slots, parked on the lane like
 * blocking receivers that lease: a slot gets the next job in priority order, holds it under a
 * lease while its runner works (so a crash or restart puts the job back: at-least-once), then
 * completes it, retries it after a backoff (the store's delay heap), or buries it as dead.
 */

/** Counters of one runner lane, kept in one place for `GET /` and, later, a metrics endpoint. */
export interface LaneCounters {
  runner: string
  concurrency: number
  running: number
  started: number
  succeeded: number
  failed: number
  retried: number
  dead: number
  duration_ms_total: number
  duration_ms_max: number
}

/** How far past its timeout a run may go before its lease lets the job go back to the lane. */
const LEASE_MARGIN_MS = 60_000

/** The wait for runs to stop once aborted at shutdown, before the daemon stops waiting for them. */
const ABORT_WAIT_MS = 15_000

/** `base * 2^(attempt-1)`, capped at `max`, with equal jitter (half fixed, half random). */
export function backoffMs(attempt: number, base: number, max: number, random = Math.random): number {
  const full = Math.min(max, base * 2 ** Math.min(attempt - 1, 52))
  return Math.round(full / 2 + (random() * full) / 2)
}

class Slot implements Receiver {
  readonly leaseMs: number
  /** Waiting in the queue for a job (not running one). */
  parked = false
  /** The daemon's own: clients' max_parked_receivers must never keep a slot from parking again. */
  readonly countsAsParked = false

  constructor(private readonly worker: LaneWorker) {
    this.leaseMs = worker.spec.timeoutMs + LEASE_MARGIN_MS
  }

  deliver(job: Job, lease?: Held): boolean {
    if (this.worker.stopping) return false
    this.parked = false
    // Called from inside a queue operation: the run starts once that has returned.
    queueMicrotask(() => {
      this.worker.run(job, lease!, this).catch((err: unknown) => this.worker.runFailed(job, err))
    })
    return true
  }

  fail(): void {
    // The hand-over's journal record failed: the job went back; this slot waits for the next one.
    this.worker.repark(this)
  }

  dismiss(): void {
    // Shutdown: the worker stops on its own (see LaneWorker.stop).
  }
}

class LaneWorker {
  stopping = false
  readonly running = new Map<Job, AbortController>()
  /** Every slot, parked or running; above `concurrency` for a while after it was lowered. */
  private readonly slots = new Set<Slot>()
  private concurrency: number
  private idle: (() => void) | undefined
  readonly counters: LaneCounters

  constructor(
    readonly spec: RunnerLane,
    private readonly runner: Runner,
    private readonly service: JobService,
    private readonly logger: Logger,
  ) {
    this.concurrency = spec.concurrency
    this.counters = { runner: spec.runner, concurrency: spec.concurrency, running: 0, started: 0, succeeded: 0, failed: 0, retried: 0, dead: 0, duration_ms_total: 0, duration_ms_max: 0 }
  }

  start(): void {
    this.runner.start?.()
    this.resize()
  }

  /** A reload: more slots start at once; of fewer, idle ones go now and busy ones when their run ends. */
  setConcurrency(concurrency: number): void {
    this.concurrency = concurrency
    this.counters.concurrency = concurrency
    if (this.stopping) return
    try {
      this.resize()
    } catch (err) {
      this.logger.error({ lane: this.spec.lane, concurrency, slots: this.slots.size, reason: (err as Error).message }, 'could not add every slot')
    }
  }

  private resize(): void {
    for (const slot of this.slots) {
      if (this.slots.size <= this.concurrency) break
      if (slot.parked && this.service.cancel(this.spec.lane, slot)) this.slots.delete(slot)
    }
    while (this.slots.size < this.concurrency) {
      const slot = new Slot(this)
      this.park(slot)
      this.slots.add(slot)
    }
  }

  private park(slot: Slot): void {
    if (this.stopping) return
    const unavailable = this.runner.availability?.()
    if (unavailable !== undefined) {
      // The runner cannot start anything (its engine is down): the slot takes no job until it can.
      unavailable.until.then(
        () => this.reuse(slot),
        (err: unknown) => this.logger.error({ lane: this.spec.lane, err }, 'a runner slot stopped waiting for its runner; the lane runs with one slot fewer'),
      )
      return
    }
    slot.parked = true
    try {
      this.service.awaitJob(this.spec.lane, slot)
    } catch (err) {
      // Slots are not held to client limits and their lane exists from the start, so this is a bug:
      // say so, rather than let the lane quietly lose a slot.
      slot.parked = false
      this.logger.error({ lane: this.spec.lane, err }, 'a runner slot could not wait for the next job; the lane runs with one slot fewer')
    }
  }

  /** A slot whose hand-over failed waits again. */
  repark(slot: Slot): void {
    slot.parked = false
    this.park(slot)
  }

  /** A slot whose run ended (or whose wait for the runner did): parked again, or let go if there are too many. */
  private reuse(slot: Slot): void {
    if (this.slots.size > this.concurrency) this.slots.delete(slot)
    else this.park(slot)
  }

  /** Runs a job and parks its slot again, whatever happens in between. */
  async run(job: Job, lease: Held, slot: Slot): Promise<void> {
    job.attempts++
    const started = Date.now()
    const c = this.counters
    c.started++
    c.running++
    const log = this.logger.child({ lane: job.lane, job_num: job.jobNum, hash: job.hash, attempt: job.attempts })
    const controller = new AbortController()
    const timer = setTimeout(() => controller.abort('timeout'), this.spec.timeoutMs)
    this.running.set(job, controller)
    this.service.events.emit('runStarted', job)
    try {
      log.debug('job started')
      const ran = await this.runOnce(job, controller.signal, log)
      // Killed by an operator: the job fails for good, whatever the runner made of the stop.
      const result: RunResult = controller.signal.reason === 'killed' && ran.status === 'failed' ? { ...ran, retry: false } : ran
      const durationMs = Date.now() - started
      c.duration_ms_total += durationMs
      c.duration_ms_max = Math.max(c.duration_ms_max, durationMs)
      this.finish(job, lease, result, { started, durationMs, interrupted: controller.signal.reason === 'shutdown' }, log)
    } finally {
      clearTimeout(timer)
      this.running.delete(job)
      c.running--
      if (this.running.size === 0) this.idle?.()
      this.reuse(slot)
    }
  }

  /** A run whose result could not be recorded: its lease ends in time and the job runs again. */
  runFailed(job: Job, err: unknown): void {
    this.logger.error({ lane: job.lane, job_num: job.jobNum, hash: job.hash, err }, 'recording the run failed; the job goes back to its lane when its lease ends')
  }

  /** The runner's result; a runner that throws, rejects or returns garbage fails the job instead. */
  private async runOnce(job: Job, signal: AbortSignal, logger: Logger): Promise<RunResult> {
    try {
      // Checked when scheduled; checked again for jobs restored from an older configuration.
      // (A Dispatch Job's message is the dispatch runner's to read.)
      const { arguments: args, target } = this.spec.runner === 'dispatch' ? { arguments: {}, target: undefined } : parseRunnerMessage(this.spec, job.message)
      this.runner.checkArguments?.(args)
      const runnerJob = { lane: job.lane, jobNum: job.jobNum, hash: job.hash, attempt: job.attempts, priority: job.priority, message: job.message, arguments: args, target }
      return checkResult(await this.runner.run(runnerJob, { signal, logger }))
    } catch (err) {
      if (err instanceof ApiError) return { status: 'failed', reason: `invalid message: ${err.message}`, retry: false }
      return { status: 'failed', reason: `the runner threw: ${err instanceof Error ? err.message : String(err)}` }
    }
  }

  private finish(job: Job, lease: Held, result: RunResult, run: { started: number; durationMs: number; interrupted: boolean }, log: Logger): void {
    const report: RunReport = {
      state: result.status === 'succeeded' ? 'succeeded' : 'failed',
      startedAt: Math.floor(run.started / 1000),
      finishedAt: Math.floor((run.started + run.durationMs) / 1000),
      durationMs: run.durationMs,
      reason: result.status === 'failed' ? result.reason : null,
      exitCode: result.exitCode ?? null,
      httpStatus: result.httpStatus ?? null,
      output: typeof result.output === 'string' ? result.output.slice(-4096) : '',
    }
    this.service.events.emit('runFinished', job, report)
    const c = this.counters
    let recorded: Maybe<Job>
    let done: () => void
    if (run.interrupted) {
      // Stopped by shutdown: back to its lane, to run again; this try does not count.
      job.attempts--
      recorded = this.service.retryLater(lease, 0)
      done = () => log.warn({ reason: 'shutdown' }, 'job interrupted; put back in its lane')
    } else if (result.status === 'failed' && result.requeue === true) {
      // It did not get to run (the runner's engine is unreachable): back to its lane, not counted.
      job.attempts--
      c.started--
      job.report = report
      recorded = this.service.retryLater(lease, 0)
      done = () => log.warn({ reason: report.reason }, 'job did not run; put back in its lane')
    } else if (result.status === 'succeeded') {
      recorded = this.service.complete(lease, report, result.result)
      done = () => {
        c.succeeded++
        log.info({ duration_ms: run.durationMs, exit_code: report.exitCode, http_status: report.httpStatus }, 'job succeeded')
      }
    } else if (result.retry !== false && job.attempts <= this.spec.retries) {
      c.failed++
      job.report = report
      const delay = backoffMs(job.attempts, this.spec.backoff.baseMs, this.spec.backoff.maxMs)
      recorded = this.service.retryLater(lease, delay)
      done = () => {
        c.retried++
        log.warn({ reason: report.reason, exit_code: report.exitCode, http_status: report.httpStatus, retry_in_ms: delay }, 'job failed; will retry')
      }
    } else {
      c.failed++
      job.report = report
      recorded = this.service.bury(lease, { ...report, state: 'dead' })
      done = () => {
        c.dead++
        log.error({ reason: report.reason, exit_code: report.exitCode, http_status: report.httpStatus, attempts: job.attempts }, 'job failed; no retries left: dead')
      }
    }
    when(recorded, done, (err: unknown) => {
      if (err instanceof ApiError && err.codeName === 'not_leased') log.warn({ reason: 'lease expired during the run' }, 'run result discarded; the job had already been put back')
      else log.error({ err }, 'the run\'s result could not be recorded; the job goes back to its lane when its lease ends')
    })
  }

  checkArguments(args: Readonly<Record<string, unknown>>): void {
    this.runner.checkArguments?.(args)
  }

  runnerStats(): Record<string, unknown> {
    return this.runner.stats?.() ?? {}
  }

  /** An operator's kill: the run of the job with this hash is aborted (reason "killed"); whether it was running here. */
  kill(hash: string): boolean {
    for (const [job, controller] of this.running) {
      if (job.hash !== hash) continue
      controller.abort('killed')
      return true
    }
    return false
  }

  /** Starts nothing more; waits up to `graceMs` for runs, then aborts them and waits for them to end. */
  async stop(graceMs: number): Promise<void> {
    this.stopping = true
    if (!(await this.allIdle(graceMs))) {
      for (const controller of this.running.values()) controller.abort('shutdown')
      if (!(await this.allIdle(ABORT_WAIT_MS))) this.logger.error({ lane: this.spec.lane, running: this.running.size }, 'runs did not stop after being aborted')
    }
    await this.runner.close?.()
  }

  private allIdle(ms: number): Promise<boolean> {
    if (this.running.size === 0) return Promise.resolve(true)
    return new Promise((resolve) => {
      const timer = setTimeout(() => resolve(this.running.size === 0), ms)
      this.idle = () => {
        clearTimeout(timer)
        resolve(true)
      }
    })
  }
}

export class Dispatcher {
  private readonly workers: Map<string, LaneWorker>

  constructor(lanes: { spec: RunnerLane; runner: Runner }[], service: JobService, logger: Logger) {
    this.workers = new Map(lanes.map(({ spec, runner }) => [spec.lane, new LaneWorker(spec, runner, service, logger)]))
  }

  start(): void {
    for (const worker of this.workers.values()) worker.start()
  }

  /** The runner serving `lane`, if it is a runner lane. */
  setConcurrency(lane: string, concurrency: number): void {
    this.workers.get(lane)?.setConcurrency(concurrency)
  }

  runnerOf(lane: string): string | undefined {
    return this.workers.get(lane)?.spec.runner
  }

  /** Validates a message scheduled on a runner lane (ApiError naming the problem). */
  checkMessage(lane: string, message: string, fromArguments = false): void {
    const worker = this.workers.get(lane)
    if (worker === undefined) {
      if (fromArguments) throw new ApiError('invalid_data', `lane ${JSON.stringify(lane)} has no runner: "arguments" are for runner lanes; send a "message"`)
      return
    }
    if (worker.spec.runner === 'dispatch') throw new ApiError('conflict', `lane ${JSON.stringify(lane)} runs Dispatch Jobs: queue them with POST /v0/jobs/queue`)
    worker.checkArguments(parseRunnerMessage(worker.spec, message).arguments)
  }

  /**
   * Stops a running job for good (an operator's kill): its run is aborted with reason "killed" (an
   * exec job's process group is signalled, a container is killed) and the job fails for good, dead.
   * Whether it was running.
   */
  kill(hash: string): boolean {
    return [...this.workers.values()].some((worker) => worker.kill(hash))
  }

  /** Each runner lane's counters, with its runner's own (a container lane's engine and jobs_total). */
  counters(): Record<string, LaneCounters & Record<string, unknown>> {
    return Object.fromEntries([...this.workers].map(([lane, worker]) => [lane, { ...worker.counters, ...worker.runnerStats() }]))
  }

  async stop(graceMs: number): Promise<void> {
    await Promise.all([...this.workers.values()].map((worker) => worker.stop(graceMs)))
  }
}

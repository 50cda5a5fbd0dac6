import { CODES } from '../errors'
import { Job } from '../queue/job'
import type { JobService, UniqueScheduleInput } from '../service/job-service'
import type { FinishWaiter, FinishedState } from '../service/waiters'
import { then, when } from '../store/job-store'
import { fail } from './answer'
import type { Exchange } from './exchange'
import { duplicateReply, jobStateReply } from './replies'

/** A watch outlives the wait by this much, so a finish just at its end is still found. */
const WATCH_MARGIN_MS = 10_000

/**
 * `/schedule` with `"wait"`: an HTTP request served as a job (desaster's HTTP module). The reply
 * comes when the job finishes, as `GET /job` shows it (state, result, last run), or when the wait
 * runs out, with the job's number, hash and state then: whichever worker takes it does the work.
 */
export class WaitedSchedule implements FinishWaiter {
  private timer: NodeJS.Timeout | undefined
  private watched: { jobNum: number; hash: string } | undefined
  /** The schedule is durable; before that, a finish is kept, to be answered after it. */
  private durable = false
  private finishedEarly: { job: Job; state: FinishedState } | undefined
  /** Shutdown gave up on the wait before the schedule was durable: answered once it is. */
  private givenUpEarly = false
  private done = false

  constructor(
    private readonly ex: Exchange,
    private readonly service: JobService,
    private readonly waitMs: number,
    /** Every wait in progress, so shutdown can answer them. */
    private readonly waits: Set<WaitedSchedule>,
  ) {}

  start(input: UniqueScheduleInput): void {
    // watchMs: a store shared by several frontends keeps the job's end for this one to read.
    const scheduled = this.service.scheduleAndWait({ ...input, watchMs: this.waitMs + WATCH_MARGIN_MS }, this)
    this.waits.add(this)
    this.ex.onAbort(() => this.end())
    when(
      scheduled,
      (outcome) => {
        this.durable = true
        if (!(outcome instanceof Job) && !outcome.active) return this.answer(duplicateReply(outcome))
        if (this.finishedEarly !== undefined) return this.finished(this.finishedEarly.job, this.finishedEarly.state)
        if (this.givenUpEarly) return this.giveUp()
        this.timer = setTimeout(() => this.giveUp(), this.waitMs)
      },
      (err) => {
        this.end()
        fail(this.ex, err)
      },
    )
  }

  watching(jobNum: number, hash: string): void {
    this.watched = { jobNum, hash }
  }

  finished(job: Job, state: FinishedState): void {
    if (!this.durable) {
      this.finishedEarly = { job, state }
      return
    }
    // Told from inside another request's handler: answered once it has returned (see Outbox).
    setImmediate(() => this.answer(jobStateReply(job, state)))
  }

  /** The wait ran out, or the daemon is stopping (the job is saved with the queue): its state now. */
  giveUp(): void {
    if (this.done || this.watched === undefined) return this.end()
    // Its reply, whatever it says, must not come before the schedule's record is on disk.
    if (!this.durable) {
      this.givenUpEarly = true
      return
    }
    const { jobNum, hash } = this.watched
    const state = then(this.service.admin.find(hash), (found) => found?.state ?? 'queued')
    when(state, (now) => this.answer(`{"status":"ok","code":${CODES.ok.code},"job_num":${jobNum},"hash":"${hash}","state":"${now}"}`), (err) => fail(this.ex, err))
  }

  private answer(body: string): void {
    if (this.done) return
    this.end()
    this.ex.send(200, body)
  }

  private end(): void {
    this.done = true
    clearTimeout(this.timer)
    this.waits.delete(this)
    if (this.watched !== undefined) this.service.stopWaiting(this.watched.jobNum, this)
  }
}

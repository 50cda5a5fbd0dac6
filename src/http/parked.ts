import { type ApiError, CODES } from '../errors'
import type { Held } from '../queue/held'
import type { Job } from '../queue/job'
import type { JobService } from '../service/job-service'
import type { Receiver } from '../service/receiver'
import { type Exchange, errorBody } from './exchange'
import type { Taken } from '../store/job-store'
import { SHUTTING_DOWN, jobReply, jobsReply } from './replies'

/**
 * Without a journal: jobs handed to parked receivers, answered once the current request's handler
 * has returned. Inside a handler uWS has the current connection corked and cannot cork another, so
 * a reply to a parked receiver would go out in several small unbuffered writes: measured here, that
 * held schedule-to-delivery to ~4,000 jobs/s; answered after the handler, ~13,000 jobs/s. (With the
 * journal, hand-overs reach receivers from the journal's callbacks, outside any handler.)
 */
export class Outbox {
  private pending: { receiver: ParkedReceive; taken: Taken[]; batch: boolean }[] = []

  constructor(private readonly service: JobService) {}

  add(receiver: ParkedReceive, taken: Taken[], batch: boolean): void {
    if (this.pending.push({ receiver, taken, batch }) === 1) setImmediate(() => this.flush())
  }

  /** Sends every pending reply now (also at shutdown, before the final snapshot is taken). */
  flush(): void {
    const pending = this.pending
    this.pending = []
    for (const { receiver, taken, batch } of pending) {
      // The client left between the hand-over and the reply: the jobs go back to their places.
      if (!receiver.send(taken, batch)) for (const t of taken) this.service.undelivered(t)
    }
  }
}

/** A parked `/receive_block`: the service hands it a job, its timeout ends it, or shutdown dismisses it. */
export class ParkedReceive implements Receiver {
  timer: NodeJS.Timeout | undefined
  handedJob = false

  constructor(
    readonly ex: Exchange,
    private readonly outbox: Outbox | undefined,
    readonly leaseMs: number | undefined,
    /** A batch receive: up to this many jobs, once `min` are ready. */
    readonly count?: number,
    readonly min?: number,
  ) {}

  deliver(job: Job, lease?: Held): boolean {
    return this.hand([{ job, lease }], false)
  }

  deliverMany(taken: Taken[]): boolean {
    return this.hand(taken, true)
  }

  send(taken: Taken[], batch: boolean): boolean {
    return this.ex.send(200, batch ? jobsReply(taken) : jobReply(taken[0]!.job, taken[0]!.lease))
  }

  private hand(taken: Taken[], batch: boolean): boolean {
    if (!this.ex.open || this.handedJob) return false
    this.handedJob = true
    this.stopTimer()
    if (this.outbox !== undefined) {
      this.outbox.add(this, taken, batch)
      return true
    }
    return this.send(taken, batch)
  }

  fail(err: ApiError): void {
    this.stopTimer()
    this.ex.sendError(err)
  }

  stopTimer(): void {
    if (this.timer !== undefined) clearTimeout(this.timer)
    this.timer = undefined
  }

  dismiss(): void {
    this.stopTimer()
    this.ex.send(503, errorBody(CODES.shutting_down.code, SHUTTING_DOWN), true)
  }
}

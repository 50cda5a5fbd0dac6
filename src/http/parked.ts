import { CODES } from '../errors'
import type { Logger } from '../log'
import type { Job } from '../queue/job'
import type { Receiver } from '../queue/lane'
import type { Queue } from '../queue/queue'
import { type Exchange, errorBody } from './exchange'
import { SHUTTING_DOWN, jobReply } from './replies'

/**
 * Jobs handed to parked receivers, answered once the current request's handler has returned.
 * Inside a handler uWS has the current connection corked and cannot cork another, so a reply to a
 * parked receiver would go out in several small unbuffered writes: measured here, that held
 * schedule-to-delivery to ~4,000 jobs/s; answered after the handler, ~13,000 jobs/s.
 */
export class Outbox {
  private deliveries: [ParkedReceive, Job][] = []

  constructor(
    private readonly queue: Queue,
    private readonly logger: Logger,
  ) {}

  add(receiver: ParkedReceive, job: Job): void {
    if (this.deliveries.push([receiver, job]) === 1) setImmediate(() => this.flush())
  }

  /** Sends every pending reply now (at shutdown, before the final snapshot is taken). */
  flush(): void {
    const deliveries = this.deliveries
    this.deliveries = []
    for (const [receiver, job] of deliveries) {
      if (receiver.ex.send(200, jobReply(job))) continue
      // The client left between the hand-over and the reply: the job goes back to its place.
      this.logger.warn({ lane: job.lane, job_num: job.jobNum, reason: 'receiver disconnected' }, 'job put back')
      this.queue.returnUndelivered(job)
    }
  }
}

/** A parked `/receive_block`: the queue hands it a job, its timeout ends it, or shutdown dismisses it. */
export class ParkedReceive implements Receiver {
  timer: NodeJS.Timeout | undefined
  handedJob = false

  constructor(
    readonly ex: Exchange,
    private readonly outbox: Outbox,
  ) {}

  deliver(job: Job): boolean {
    if (!this.ex.open || this.handedJob) return false
    this.handedJob = true
    this.stopTimer()
    this.outbox.add(this, job)
    return true
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

import type { Logger } from '../log'
import type { Held } from '../queue/held'
import type { Job } from '../queue/job'
import type { Queue } from '../queue/queue'
import type { Exchange } from './exchange'
import { type Durability, jobReply, journalFailed } from './replies'

/** A job handed to a parked receiver (under `lease` when it leases), waiting for its reply to go out. */
interface Delivery {
  readonly ex: Exchange
  readonly job: Job
  readonly lease: Held | undefined
}

/**
 * The one way a reply that reports a change goes out: once that change is durable. With the
 * journal, each reply waits on its own `whenDurable`, registered after its change was appended,
 * so it is answered only when a batch holding its own record is written (and, in `always` mode,
 * synced); a reply never rides on a callback registered for an earlier record. Without a journal
 * replies go out at once, except hand-overs to parked receivers (below).
 *
 * Hand-overs whose reply cannot be sent (the client left, the journal failed) put the job back,
 * but only while that hand-over is still the job's latest (see Queue.returnUndelivered).
 */
export class CommitPath {
  /**
   * Without a journal: jobs handed to parked receivers, answered once the current request's
   * handler has returned. Inside a handler uWS has that request's connection corked and cannot cork
   * another, so a reply to a parked receiver would go out in several small unbuffered writes:
   * measured here, that held schedule-to-delivery to ~4,000 jobs/s; answered after the handler,
   * ~13,000 jobs/s.
   */
  private afterHandler: Delivery[] = []

  constructor(
    private readonly queue: Queue,
    private readonly logger: Logger,
    private readonly durability: Durability | undefined,
  ) {}

  /** Answers `body` once the change just made is durable; if it cannot be, an error saying `failure`. */
  answer(ex: Exchange, body: string, failure: string): void {
    if (this.durability === undefined) ex.send(200, body)
    else this.durability.whenDurable((err) => (err === undefined ? ex.send(200, body) : ex.sendError(journalFailed(err, failure))))
  }

  /**
   * Sends `job` to its receiver once its take (or lease) is durable; `parked` for parked
   * receivers. The common case (no journal, a receiver in its own handler) allocates nothing.
   */
  handOver(ex: Exchange, job: Job, lease: Held | undefined, parked: boolean): void {
    if (this.durability !== undefined) this.durability.whenDurable((err) => this.send(ex, job, lease, err))
    else if (!parked) this.send(ex, job, lease, undefined)
    else if (this.afterHandler.push({ ex, job, lease }) === 1) setImmediate(() => this.flush())
  }

  /** Sends the hand-overs waiting for the end of a handler now (at shutdown, before the final snapshot). */
  flush(): void {
    const deliveries = this.afterHandler
    this.afterHandler = []
    for (const { ex, job, lease } of deliveries) this.send(ex, job, lease, undefined)
  }

  private send(ex: Exchange, job: Job, lease: Held | undefined, err: Error | undefined): void {
    if (err === undefined && ex.send(200, jobReply(job, lease))) return
    const putBack = this.queue.returnUndelivered(job, lease)
    const reason = err === undefined ? 'receiver disconnected' : 'journal failed'
    if (putBack) this.logger.warn({ lane: job.lane, job_num: job.jobNum, hash: job.hash, reason }, 'job put back')
    else this.logger.warn({ lane: job.lane, job_num: job.jobNum, hash: job.hash, reason }, 'job not put back: the lease it was handed under had already ended')
    if (err !== undefined) ex.sendError(journalFailed(err, putBack ? 'the job stays queued' : 'the job was back in its lane already'))
  }
}

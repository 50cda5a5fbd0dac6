import type { Held } from './held'
import type { Job } from './job'
import { type QueueTotals, ReadyJobs } from './ready'

/** Someone waiting for a job: a parked `/receive_block`, or a runner slot. */
export interface Receiver {
  /** Set when the receiver leases jobs (ms), rather than taking them for good. */
  readonly leaseMs?: number
  /**
   * False for the daemon's own runner slots: they are not clients, so `max_parked_receivers` does
   * not hold them back (a slot that could not park again would stop its lane) and
   * `parked_receivers` does not count them. Counted when left out.
   */
  readonly countsAsParked?: boolean
  /**
   * Hands `job` over (under `lease` when the receiver leases: its deadline and token). Returns
   * false when the receiver turned out to be gone; the queue then puts the job back in its place,
   * so no job is lost between schedule and a live receiver.
   */
  deliver(job: Job, lease?: Held): boolean
  /** Tells a parked receiver it will get nothing (the daemon is shutting down). */
  dismiss(): void
}

/** One lane: its ready jobs in serving order and its parked receivers, oldest first. */
export class Lane {
  readonly ready: ReadyJobs
  constructor(
    readonly name: string,
    totals: QueueTotals,
    /** A Set keeps insertion order (oldest first) and removes a receiver in O(1). */
    readonly parked = new Set<Receiver>(),
  ) {
    this.ready = new ReadyJobs(totals)
  }
}

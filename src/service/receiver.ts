import type { ApiError } from '../errors'
import type { Held } from '../queue/held'
import type { Job } from '../queue/job'
import type { Taken } from '../store/job-store'

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
   * Hands `job` over (under `lease` when the receiver leases: its deadline and token), once the
   * hand-over is durable. Returns false when the receiver turned out to be gone; the service then
   * puts the job back in its place, so no job is lost between schedule and a live receiver.
   */
  deliver(job: Job, lease?: Held): boolean
  /**
   * A batch receiver (`count` set) takes up to `count` jobs at once, once at least `min` are ready,
   * and gets them here instead of `deliver`.
   */
  readonly count?: number
  readonly min?: number
  deliverMany?(taken: Taken[]): boolean
  /** The hand-over could not be made durable (the journal failed); the job went back. */
  fail(err: ApiError): void
  /** Tells a parked receiver it will get nothing (the daemon is shutting down). */
  dismiss(): void
}

import type { GroupWeights } from './groups'
import { type QueueTotals, ReadyJobs } from './ready'
import { LaneStamps } from './stamp'

/** One lane: its ready jobs in serving order (groups weighed by `weights`), and the stamps its jobs share. */
export class Lane {
  readonly ready: ReadyJobs
  readonly stamps: LaneStamps

  constructor(
    readonly name: string,
    totals: QueueTotals,
    weights?: GroupWeights,
  ) {
    this.stamps = new LaneStamps(name)
    this.ready = new ReadyJobs(totals, weights, (priority) => this.stamps.forget(priority))
  }
}

import type { GroupWeights } from './groups'
import { type QueueTotals, ReadyJobs } from './ready'

/** One lane: its ready jobs in serving order (groups weighed by `weights`). */
export class Lane {
  readonly ready: ReadyJobs

  constructor(
    readonly name: string,
    totals: QueueTotals,
    weights?: GroupWeights,
  ) {
    this.ready = new ReadyJobs(totals, weights)
  }
}

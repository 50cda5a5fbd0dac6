import { type QueueTotals, ReadyJobs } from './ready'

/** One lane: its ready jobs in serving order. */
export class Lane {
  readonly ready: ReadyJobs

  constructor(
    readonly name: string,
    totals: QueueTotals,
  ) {
    this.ready = new ReadyJobs(totals)
  }
}

import { CODES } from '../errors'
import type { Held } from '../queue/held'
import type { Job } from '../queue/job'
import type { Receiver } from '../queue/lane'
import type { CommitPath } from './commit'
import { type Exchange, errorBody } from './exchange'
import { SHUTTING_DOWN } from './replies'

/** A parked `/receive_block`: the queue hands it a job, its timeout ends it, or shutdown dismisses it. */
export class ParkedReceive implements Receiver {
  timer: NodeJS.Timeout | undefined
  handedJob = false

  constructor(
    readonly ex: Exchange,
    private readonly commits: CommitPath,
    readonly leaseMs: number | undefined,
  ) {}

  deliver(job: Job, lease?: Held): boolean {
    if (!this.ex.open || this.handedJob) return false
    this.handedJob = true
    this.stopTimer()
    this.commits.handOver(this.ex, job, lease, true)
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

import type { Held } from '../queue/held'
import type { Job, RunReport } from '../queue/job'
import type { JobEventListener } from '../service/events'
import type { Taken } from '../store/job-store'
import { Buckets, DURATION_BOUNDS, LATENCY_BOUNDS } from './buckets'
import { ScheduleTimes } from './schedule-times'

/** What happened to one lane's jobs since start. */
export class LaneTally {
  scheduled = 0
  /** Handed to a consumer or a runner slot (for good or leased). */
  received = 0
  acked = 0
  released = 0
  expired = 0
  /** Dead jobs queued again by an operator. */
  retried = 0
  deadLettered = 0
  deleted = 0
  /** Seconds from schedule to each hand-over. */
  readonly latency = new Buckets(LATENCY_BOUNDS)
  /** Seconds each run of a runner lane took. */
  readonly runs = new Buckets(DURATION_BOUNDS)
  /** Runs as the docker job dispatcher counts containers: `action\0status` → count. */
  readonly jobsTotal = new Map<string, number>()
}

/**
 * Counters by lane, fed by the job service's event stream: each event costs a map lookup (skipped
 * while events keep naming the same lane) and a few additions, nothing allocated. Read by
 * `GET /metrics` and the dashboard when they ask.
 */
export class JobMetrics implements JobEventListener {
  readonly lanes = new Map<string, LaneTally>()
  private lastLane = ''
  private last: LaneTally | undefined
  private readonly times: ScheduleTimes

  constructor(private readonly clock: () => number = Date.now) {
    this.times = new ScheduleTimes(clock)
  }

  tally(lane: string): LaneTally {
    if (lane === this.lastLane && this.last !== undefined) return this.last
    let tally = this.lanes.get(lane)
    if (tally === undefined) this.lanes.set(lane, (tally = new LaneTally()))
    this.lastLane = lane
    this.last = tally
    return tally
  }

  scheduled(job: Job): void {
    this.tally(job.lane).scheduled++
    this.times.note(job.jobNum)
  }

  taken(job: Job, _lease: Held | undefined): void {
    const tally = this.tally(job.lane)
    tally.received++
    tally.latency.observe(Math.max(0, this.clock() - this.times.scheduledAt(job)) / 1000)
  }

  /**
   * A batch: the jobs scheduled in one millisecond waited equally long, so each such run of jobs is
   * one observation weighted by its length (per job, the histogram was a tenth of a batch receive).
   */
  takenMany(taken: readonly Taken[]): void {
    const now = this.clock()
    for (let i = 0; i < taken.length; ) {
      const { job } = taken[i]!
      const tally = this.tally(job.lane)
      const waited = Math.max(0, now - this.times.scheduledAt(job)) / 1000
      const until = this.times.sameUntil
      let j = i + 1
      while (j < taken.length && taken[j]!.job.lane === job.lane && taken[j]!.job.jobNum >= job.jobNum && taken[j]!.job.jobNum < until) j++
      tally.received += j - i
      tally.latency.observe(waited, j - i)
      i = j
    }
  }

  acked(job: Job): void {
    this.tally(job.lane).acked++
  }

  released(job: Job): void {
    this.tally(job.lane).released++
  }

  expired(job: Job): void {
    this.tally(job.lane).expired++
  }

  retried(job: Job): void {
    this.tally(job.lane).retried++
  }

  dead(job: Job): void {
    this.tally(job.lane).deadLettered++
  }

  deleted(job: Job): void {
    this.tally(job.lane).deleted++
  }

  runStarted(job: Job): void {
    const tally = this.tally(job.lane)
    // A job's first run "creates" it, as a container is created once and started at each try.
    if (job.attempts === 1) count(tally.jobsTotal, 'create', '')
    count(tally.jobsTotal, 'start', '')
  }

  runFinished(job: Job, report: RunReport): void {
    const tally = this.tally(job.lane)
    tally.runs.observe(report.durationMs / 1000)
    count(tally.jobsTotal, 'die', dieStatus(report))
  }
}

/** The `status` of a `die`: the exit code, else the HTTP status, else 0 for success and "error" (a timeout, a runner that threw). */
export function dieStatus(report: RunReport): string {
  if (report.exitCode !== null) return String(report.exitCode)
  if (report.httpStatus !== null) return String(report.httpStatus)
  return report.state === 'succeeded' ? '0' : 'error'
}

function count(totals: Map<string, number>, action: string, status: string): void {
  const key = `${action}\0${status}`
  totals.set(key, (totals.get(key) ?? 0) + 1)
}

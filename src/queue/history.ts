import type { Job } from './job'

export interface HistoryLimits {
  /** How long a succeeded job stays inspectable, in ms. */
  keepFinishedMs: (lane: string) => number
  /** At most this many succeeded jobs are kept in all (the oldest go first). */
  maxFinished: number
}

/**
 * Jobs whose runs are over: dead ones (no retries left), kept until retried or deleted, newest
 * first per lane; and succeeded ones, kept a while for `GET /job`, then forgotten. Pure: the
 * caller passes the time, and finished jobs are dropped as newer ones arrive or are looked up.
 */
export class JobHistory {
  private readonly dead = new Map<string, Job>()
  private readonly deadByLane = new Map<string, Set<Job>>()
  /** Succeeded jobs in the order they finished: a Map keeps insertion order. */
  private readonly finished = new Map<string, { job: Job; until: number }>()

  constructor(private readonly limits: HistoryLimits) {}

  get deadCount(): number {
    return this.dead.size
  }

  bury(job: Job): void {
    this.dead.set(job.hash, job)
    let lane = this.deadByLane.get(job.lane)
    if (lane === undefined) this.deadByLane.set(job.lane, (lane = new Set()))
    lane.add(job)
  }

  /** Takes a dead job out (to retry or delete it); undefined when `hash` is not dead. */
  unbury(hash: string): Job | undefined {
    const job = this.dead.get(hash)
    if (job === undefined) return undefined
    this.dead.delete(hash)
    this.deadByLane.get(job.lane)!.delete(job)
    return job
  }

  deadJob(hash: string): Job | undefined {
    return this.dead.get(hash)
  }

  /** A lane's dead jobs, newest first: `limit` of them from `offset`, and how many there are. */
  deadOf(lane: string, offset: number, limit: number): { total: number; jobs: Job[] } {
    const all = [...(this.deadByLane.get(lane) ?? [])].reverse()
    return { total: all.length, jobs: all.slice(offset, offset + limit) }
  }

  /** Every dead job, by lane (for snapshots). */
  allDead(): Map<string, Job[]> {
    return new Map([...this.deadByLane].filter(([, jobs]) => jobs.size > 0).map(([lane, jobs]) => [lane, [...jobs]]))
  }

  succeeded(job: Job, now: number): void {
    this.expire(now)
    const keepMs = this.limits.keepFinishedMs(job.lane)
    if (keepMs <= 0 || this.limits.maxFinished <= 0) return
    this.finished.set(job.hash, { job, until: now + keepMs })
    if (this.finished.size > this.limits.maxFinished) this.finished.delete(this.finished.keys().next().value as string)
  }

  finishedJob(hash: string, now: number): Job | undefined {
    this.expire(now)
    const entry = this.finished.get(hash)
    return entry !== undefined && entry.until > now ? entry.job : undefined
  }

  /**
   * Forgets succeeded jobs past their time, oldest first. Lanes may keep them for different
   * times, so this stops at the first one still due; lookups check each entry's own time.
   */
  private expire(now: number): void {
    for (const [hash, entry] of this.finished) {
      if (entry.until > now) break
      this.finished.delete(hash)
    }
  }
}

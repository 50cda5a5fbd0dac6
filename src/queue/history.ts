import type { Job } from './job'

export interface HistoryLimits {
  /** How long a succeeded job stays inspectable, in ms. */
  keepFinishedMs: (lane: string) => number
  /** At most this many succeeded jobs are kept in all (the oldest go first). */
  maxFinished: number
  /** At most this many UTF-8 bytes of succeeded jobs' messages (the oldest go first); 0: no bound. */
  maxFinishedBytes?: number
}

/**
 * Jobs whose runs are over: dead ones (no retries left), kept until retried or deleted, newest
 * first per lane; and succeeded ones, kept a while for `GET /job`, then forgotten. Pure: the
 * caller passes the time, and finished jobs are dropped as newer ones arrive or are looked up.
 *
 * Dead jobs are data an operator must act on: they count against the queue's limits as queued
 * jobs do (`deadBytes`). Succeeded ones are only history: bounded by count and bytes, the oldest
 * forgotten first (`forgotten` counts those dropped before their time).
 */
export class JobHistory {
  private readonly dead = new Map<string, Job>()
  private readonly deadByLane = new Map<string, Set<Job>>()
  /** Succeeded jobs in the order they finished: a Map keeps insertion order. */
  private readonly finished = new Map<string, { job: Job; until: number; bytes: number }>()
  /** Messages' UTF-8 bytes of the dead jobs. */
  deadBytes = 0
  private finishedBytes = 0
  /** Succeeded jobs dropped before their keep_finished time was up, to stay within the bounds. */
  forgotten = 0

  constructor(private readonly limits: HistoryLimits) {}

  get deadCount(): number {
    return this.dead.size
  }

  /** How many of `lane`'s jobs are dead. */
  deadCountOf(lane: string): number {
    return this.deadByLane.get(lane)?.size ?? 0
  }

  bury(job: Job): void {
    this.deadBytes += Buffer.byteLength(job.message)
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
    this.deadBytes -= Buffer.byteLength(job.message)
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

  /** A dead or succeeded job by number: O(jobs kept here), for jobs whose hash is not derived from their number. */
  findNumber(jobNum: number, now: number): Job | undefined {
    for (const job of this.dead.values()) if (job.jobNum === jobNum) return job
    this.expire(now)
    for (const { job } of this.finished.values()) if (job.jobNum === jobNum) return job
    return undefined
  }

  /** A lane's succeeded jobs still kept, oldest finished first. */
  finishedOf(lane: string, now: number): Job[] {
    this.expire(now)
    return [...this.finished.values()].filter((entry) => entry.job.lane === lane && entry.until > now).map((entry) => entry.job)
  }

  /** Every dead job, by lane (for snapshots). */
  allDead(): Map<string, Job[]> {
    return new Map([...this.deadByLane].filter(([, jobs]) => jobs.size > 0).map(([lane, jobs]) => [lane, [...jobs]]))
  }

  /** Keeps a succeeded job for its lane's keep_finished; returns until when, or undefined when it is not kept. */
  succeeded(job: Job, now: number): number | undefined {
    const keepMs = this.limits.keepFinishedMs(job.lane)
    if (keepMs <= 0 || this.limits.maxFinished <= 0) return undefined
    this.keep(job, now + keepMs, now)
    return now + keepMs
  }

  /** A succeeded job read back from a snapshot or the journal, kept until `until` (restore them oldest first). */
  restoreSucceeded(job: Job, until: number, now: number): void {
    if (until > now && this.limits.maxFinished > 0) this.keep(job, until, now)
  }

  /** Every succeeded job kept, oldest first, with until when (for snapshots). */
  allFinished(now: number): { job: Job; until: number }[] {
    this.expire(now)
    return [...this.finished.values()].map(({ job, until }) => ({ job, until }))
  }

  private keep(job: Job, until: number, now: number): void {
    this.expire(now)
    const bytes = Buffer.byteLength(job.message) + (job.result?.length ?? 0)
    this.finished.set(job.hash, { job, until, bytes })
    this.finishedBytes += bytes
    const maxBytes = this.limits.maxFinishedBytes ?? 0
    while (this.finished.size > this.limits.maxFinished || (maxBytes > 0 && this.finishedBytes > maxBytes && this.finished.size > 0)) {
      const [oldest, entry] = this.finished.entries().next().value as [string, { bytes: number }]
      this.forget(oldest, entry.bytes)
      this.forgotten++
    }
  }

  private forget(hash: string, bytes: number): void {
    this.finished.delete(hash)
    this.finishedBytes -= bytes
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
      this.forget(hash, entry.bytes)
    }
  }
}

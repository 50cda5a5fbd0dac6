import type { Job } from '../queue/job'
import type { JobEventListener } from './events'

/** How often the counts are sampled, and how many samples make the window (a minute). */
export const RATE_SAMPLE_MS = 5000
const SAMPLES = 13

/**
 * Each lane's recent drain rate: jobs handed to consumers or runner slots per second over about
 * the last minute, from a count per lane (an increment per hand-over) sampled every 5 seconds.
 * Gives queued jobs an ETA: their position in the lane over this rate.
 */
export class DrainRates implements JobEventListener {
  private readonly counts = new Map<string, { taken: number; samples: number[] }>()
  private lastLane = ''
  private last: { taken: number; samples: number[] } | undefined
  private readonly sampledAt: number[] = []

  constructor(private readonly clock: () => number = Date.now) {}

  taken(job: Job): void {
    if (job.lane !== this.lastLane || this.last === undefined) {
      let entry = this.counts.get(job.lane)
      if (entry === undefined) this.counts.set(job.lane, (entry = { taken: 0, samples: [] }))
      this.lastLane = job.lane
      this.last = entry
    }
    this.last.taken++
  }

  /** Takes a sample of every lane's count (a background task, every RATE_SAMPLE_MS). */
  sample(): void {
    this.sampledAt.push(this.clock())
    if (this.sampledAt.length > SAMPLES) this.sampledAt.shift()
    for (const entry of this.counts.values()) {
      entry.samples.push(entry.taken)
      while (entry.samples.length > this.sampledAt.length) entry.samples.shift()
    }
  }

  /** Jobs per second the lane drained over the window, up to now; 0 before two samples or when it drained none. */
  rate(lane: string): number {
    const entry = this.counts.get(lane)
    if (entry === undefined || entry.samples.length === 0) return 0
    const since = this.sampledAt[this.sampledAt.length - entry.samples.length]!
    const seconds = (this.clock() - since) / 1000
    return seconds <= 0 ? 0 : (entry.taken - entry.samples[0]!) / seconds
  }

  /** Seconds until a job with `position` jobs ahead of it is handed over, at the lane's recent rate; null when the lane does not drain. */
  eta(lane: string, position: number): number | null {
    const rate = this.rate(lane)
    return rate > 0 ? Math.round(((position + 1) / rate) * 10) / 10 : null
  }
}

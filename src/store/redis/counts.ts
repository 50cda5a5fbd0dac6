import { byLaneName } from '../../queue/queue'
import type { LaneCounts, Usage } from '../job-store'
import type { Client, Script } from './connection'
import type { LaneDirectory } from './lane-directory'

interface Counts {
  queued: number
  leased: number
  delayed: number
  dead: number
  jobs: number
  bytes: number
  forgotten: number
  paused: boolean
  /** When the lane's next job to serve was scheduled (seconds since the epoch), if one is ready. */
  head: number | undefined
  uniqueHeld: number
}

/**
 * Every lane's counts, read once a second (one read-only script per lane) for GET / and the
 * limits: so max_queued_jobs and max_queued_bytes hold to within a second of traffic from other
 * frontends (this frontend's own schedules count at once: from when they are admitted, as the
 * schedules of one turn are admitted before the script that queues them has run).
 */
export class CountsCache {
  private byLaneCounts = new Map<string, Counts>()
  private totals = { jobs: 0, bytes: 0, dead: 0, leased: 0, forgotten: 0, uniqueHeld: 0 }
  /** Added by this frontend since the last read. */
  private local = { jobs: 0, bytes: 0 }
  /** Being queued by this frontend: admitted, their script not answered yet (no read has them for sure). */
  private queuing = { jobs: 0, bytes: 0 }
  private readAt = 0

  constructor(private readonly script: Script) {}

  async refresh(client: Client, lanes: LaneDirectory): Promise<void> {
    const names = lanes.lanes()
    const replies = await Promise.all(
      names.map(async (lane) => {
        const { keys, channel } = lanes.keys(lane)
        return (await this.script.run(client, keys, [channel, ''])) as number[]
      }),
    )
    const next = new Map<string, Counts>()
    const totals = { jobs: 0, bytes: 0, dead: 0, leased: 0, forgotten: 0, uniqueHeld: 0 }
    names.forEach((lane, i) => {
      const [ready, leased, leasesOver, delayed, delaysOver, dead, jobs, bytes, forgotten, paused, head, uniqueHeld] = replies[i]! as number[] as [number, number, number, number, number, number, number, number, number, number, number, number]
      const counts = { queued: ready + leasesOver + delaysOver, leased: leased - leasesOver, delayed: delayed - delaysOver, dead, jobs, bytes, forgotten, paused: paused === 1, head: head < 0 ? undefined : head, uniqueHeld }
      next.set(lane, counts)
      totals.jobs += jobs
      totals.bytes += bytes
      totals.dead += dead
      totals.leased += counts.leased
      totals.forgotten += forgotten
      totals.uniqueHeld += uniqueHeld
    })
    this.byLaneCounts = next
    this.totals = totals
    this.local = { jobs: 0, bytes: 0 }
    this.readAt = Date.now()
  }

  /** A schedule starts: its jobs count from now on. */
  queued(jobs: number, bytes: number): void {
    this.queuing.jobs += jobs
    this.queuing.bytes += bytes
  }

  /** A schedule's script answered (`made`) or failed: its jobs count as added, or no more. */
  settled(jobs: number, bytes: number, made: boolean): void {
    this.queuing.jobs -= jobs
    this.queuing.bytes -= bytes
    if (made) {
      this.local.jobs += jobs
      this.local.bytes += bytes
    }
  }

  /** Jobs queued by a call not counted beforehand (unique schedules: their script decides how many). */
  added(jobs: number, bytes: number): void {
    this.local.jobs += jobs
    this.local.bytes += bytes
  }

  removed(jobs: number, bytes: number): void {
    this.local.jobs -= jobs
    this.local.bytes -= bytes
  }

  usage(lanes: number): Usage {
    const jobs = this.totals.jobs + this.local.jobs + this.queuing.jobs
    const bytes = this.totals.bytes + this.local.bytes + this.queuing.bytes
    return { jobs: Math.max(0, jobs), bytes: Math.max(0, bytes), lanes, dead: this.totals.dead }
  }

  get leased(): number {
    return this.totals.leased
  }

  get uniqueHeld(): number {
    return this.totals.uniqueHeld
  }

  get forgotten(): number {
    return this.totals.forgotten
  }

  ageMs(): number | null {
    return this.readAt === 0 ? null : Date.now() - this.readAt
  }

  /** Counts by lane; `oldestReady` is when each lane's next job to serve was scheduled (Redis keeps no index by age). */
  byLane(lanes: string[]): LaneCounts {
    const out: LaneCounts = { queued: byLaneName(), leased: byLaneName(), delayed: byLaneName(), dead: byLaneName(), oldestReady: byLaneName() }
    for (const lane of lanes) {
      const counts = this.byLaneCounts.get(lane)
      out.queued[lane] = counts?.queued ?? 0
      out.leased[lane] = counts?.leased ?? 0
      out.delayed[lane] = counts?.delayed ?? 0
      out.dead[lane] = counts?.dead ?? 0
      if (counts?.head !== undefined) out.oldestReady[lane] = counts.head
    }
    return out
  }

  /** Lanes paused as of the last read. */
  pausedLanes(): string[] {
    return [...this.byLaneCounts].filter(([, counts]) => counts.paused).map(([lane]) => lane)
  }
}

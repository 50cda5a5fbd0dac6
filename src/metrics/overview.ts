import type { MetricSources } from './exposition'
import type { Overview } from './overview-types'

export type { LaneOverview, Overview } from './overview-types'

/**
 * Every lane's counts and counters in one object: what `GET /lanes` answers and the dashboard's
 * socket sends each second. Read from the same counters as `/metrics`: O(lanes).
 */
export function overview(sources: MetricSources, drainRate: (lane: string) => number): Overview {
  const lanes = sources.laneStats()
  const runners = sources.runners()
  const paused = sources.pausedLanes()
  const now = Date.now()
  return {
    time: now,
    totals: sources.totals(),
    lanes: Object.keys(lanes.queued).map((lane) => {
      const runner = runners[lane]
      const tally = sources.jobs.lanes.get(lane)
      const leased = lanes.leased[lane] ?? 0
      const oldest = lanes.oldestReady[lane]
      return {
        lane,
        ready: lanes.queued[lane] ?? 0,
        leased: runner === undefined ? leased : 0,
        delayed: lanes.delayed[lane] ?? 0,
        dead: lanes.dead[lane] ?? 0,
        running: runner === undefined ? 0 : leased,
        parked: lanes.idle[lane] ?? 0,
        oldest_ready_age_seconds: oldest === undefined ? 0 : Math.max(0, Math.round(now / 1000 - oldest)),
        paused: paused.has(lane),
        runner: runner?.runner ?? null,
        concurrency: runner?.concurrency ?? null,
        scheduled_total: tally?.scheduled ?? 0,
        received_total: tally?.received ?? 0,
        acked_total: tally?.acked ?? 0,
        dead_lettered_total: tally?.deadLettered ?? 0,
        latency_seconds_sum: tally?.latency.sum ?? 0,
        latency_count: tally?.latency.count ?? 0,
        drain_rate: Math.round(drainRate(lane) * 10) / 10,
      }
    }),
  }
}

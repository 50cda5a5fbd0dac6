/**
 * The shape of the dashboard's overview (GET /lanes, the /ui/live socket). No imports: the
 * dashboard's own code (ui/) uses these types too.
 */

/** One lane as the dashboard shows it: counts now, counters since start (rates are their differences). */
export interface LaneOverview {
  lane: string
  ready: number
  leased: number
  delayed: number
  dead: number
  running: number
  parked: number
  oldest_ready_age_seconds: number
  paused: boolean
  /** Runner lanes: which runner, and its concurrency; null for plain lanes. */
  runner: string | null
  concurrency: number | null
  scheduled_total: number
  received_total: number
  acked_total: number
  dead_lettered_total: number
  latency_seconds_sum: number
  latency_count: number
  /** Jobs per second handed over in about the last minute. */
  drain_rate: number
}

export interface Overview {
  /** Milliseconds since the epoch. */
  time: number
  lanes: LaneOverview[]
  totals: { queued_jobs_total: number; queued_bytes: number; parked_receivers: number; next_job_num: number; finished_jobs_forgotten: number }
}

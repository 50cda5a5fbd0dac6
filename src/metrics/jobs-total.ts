import type { LaneTally } from './job-metrics'

/** One sample of the docker job dispatcher's metric: `jobs_total{namespace,action,status}`. */
export interface JobsTotalSample {
  labels: { namespace: string; action: string; status: string }
  value: number
}

/** What the metrics read of a runner lane's counters (`GET /`'s `payload.runners.<lane>`). */
export interface RunnerCounters {
  runner: string
  concurrency: number
  running: number
  /** Kept by a runner that counts its own events (a container lane). */
  jobs_total?: unknown
}

function isSample(value: unknown): value is JobsTotalSample {
  const s = value as JobsTotalSample | null
  return typeof s === 'object' && s !== null && typeof s.value === 'number' && typeof s.labels?.namespace === 'string' && typeof s.labels.action === 'string' && typeof s.labels.status === 'string'
}

/**
 * Runs of runner lanes as the docker job dispatcher counts containers: `create` once per job (its
 * first run), `start` at every run, `die` at every end with the exit status. A runner that keeps
 * these counts itself (a container lane counts its engine's events) shows them in its lane's
 * counters as `jobs_total` samples, and those are used; every other runner lane is counted from
 * the job service's events, with the lane as its namespace. Samples of one namespace are added up.
 */
export function runnerJobsTotal(runners: Record<string, RunnerCounters>, tallies: Map<string, LaneTally>): JobsTotalSample[] {
  const summed = new Map<string, JobsTotalSample>()
  const add = (namespace: string, action: string, status: string, value: number): void => {
    const key = `${namespace}\0${action}\0${status}`
    const seen = summed.get(key)
    if (seen !== undefined) seen.value += value
    else summed.set(key, { labels: { namespace, action, status }, value })
  }
  for (const [lane, counters] of Object.entries(runners)) {
    const own = counters.jobs_total
    if (Array.isArray(own)) {
      for (const sample of own) if (isSample(sample)) add(sample.labels.namespace, sample.labels.action, sample.labels.status, sample.value)
      continue
    }
    for (const [key, value] of tallies.get(lane)?.jobsTotal ?? []) {
      const [action, status] = key.split('\0') as [string, string]
      add(lane, action, status, value)
    }
  }
  return [...summed.values()]
}

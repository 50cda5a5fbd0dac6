import { Counter, Gauge, Registry, type RegistryContentType, collectDefaultMetrics } from 'prom-client'
import type { LaneStats } from '../service/job-service'
import type { TaskStatus } from '../service/tasks'
import type { StoreStats } from '../store/job-store'
import type { Buckets } from './buckets'
import type { JobMetrics, LaneTally } from './job-metrics'
import { type JobsTotalSample, type RunnerCounters, runnerJobsTotal } from './jobs-total'

/** What a scrape reads, each once, when it is asked for. */
export interface MetricSources {
  laneStats(): LaneStats
  totals(): { queued_jobs_total: number; queued_bytes: number; parked_receivers: number; next_job_num: number; finished_jobs_forgotten: number }
  pausedLanes(): ReadonlySet<string>
  tasks(): Record<string, TaskStatus>
  store(): StoreStats
  /** Each runner lane's counters (`GET /`'s `payload.runners`), a container lane's `jobs_total` samples among them. */
  runners(): Record<string, RunnerCounters>
  jobs: JobMetrics
}

export const PROMETHEUS_CONTENT_TYPE = Registry.PROMETHEUS_CONTENT_TYPE
export const OPENMETRICS_CONTENT_TYPE = Registry.OPENMETRICS_CONTENT_TYPE

type Labels = Record<string, string>
type Fill = (add: (labels: Labels, value: number) => void, scrape: Scrape) => void

/** What one scrape read from the sources, so that each metric does not read them again. */
interface Scrape {
  lanes: LaneStats
  store: StoreStats
  runners: ReturnType<MetricSources['runners']>
  tallies: Map<string, LaneTally>
}

/**
 * `GET /metrics`: the daemon's metrics in the Prometheus text format, or OpenMetrics when the
 * scraper asks for it. prom-client renders them (and adds the process's CPU, memory, file
 * descriptors, heap and event-loop lag); every value is read from counters the daemon keeps
 * anyway, at scrape time, so the hot path pays for nothing here. Two registries, one per format:
 * prom-client renames counters in place for OpenMetrics.
 */
export class Exposition {
  private readonly registries: Record<'prometheus' | 'openmetrics', Registry<RegistryContentType>>
  private scrape: Scrape | undefined

  constructor(private readonly sources: MetricSources) {
    this.registries = { prometheus: this.build(Registry.PROMETHEUS_CONTENT_TYPE), openmetrics: this.build(Registry.OPENMETRICS_CONTENT_TYPE) }
  }

  /** The exposition in the format `accept` (an Accept header) asks for, and its content type. */
  async render(accept: string): Promise<{ contentType: string; body: string }> {
    const registry = /application\/openmetrics-text/i.test(accept) ? this.registries.openmetrics : this.registries.prometheus
    const { sources } = this
    this.scrape = { lanes: sources.laneStats(), store: sources.store(), runners: sources.runners(), tallies: sources.jobs.lanes }
    try {
      return { contentType: registry.contentType, body: await registry.metrics() }
    } finally {
      this.scrape = undefined
    }
  }

  private build(contentType: RegistryContentType): Registry<RegistryContentType> {
    const registry = new Registry<RegistryContentType>()
    registry.setContentType(contentType)
    const self = this
    const { sources } = this
    const read = (): Scrape => self.scrape ?? { lanes: sources.laneStats(), store: sources.store(), runners: sources.runners(), tallies: sources.jobs.lanes }
    const gauge = (name: string, help: string, labelNames: string[], fill: Fill): void => {
      new Gauge({ name, help, labelNames, registers: [registry], collect() {
        this.reset()
        fill((labels, value) => this.set(labels, value), read())
      } })
    }
    const counter = (name: string, help: string, labelNames: string[], fill: Fill): void => {
      new Counter({ name, help, labelNames, registers: [registry], collect() {
        this.reset()
        fill((labels, value) => this.inc(labels, value), read())
      } })
    }
    const perLane = (pick: (tally: LaneTally) => number): Fill => (add, { tallies }) => {
      for (const [lane, tally] of tallies) add({ lane }, pick(tally))
    }

    gauge('dispenserd_jobs', 'Jobs kept by the daemon, by lane and state (running: leased by a runner slot).', ['lane', 'state'], (add, { lanes, runners }) => {
      for (const lane of Object.keys(lanes.queued)) {
        const leased = lanes.leased[lane] ?? 0
        const runner = lane in runners
        add({ lane, state: 'ready' }, lanes.queued[lane] ?? 0)
        add({ lane, state: 'leased' }, runner ? 0 : leased)
        add({ lane, state: 'running' }, runner ? leased : 0)
        add({ lane, state: 'delayed' }, lanes.delayed[lane] ?? 0)
        add({ lane, state: 'dead' }, lanes.dead[lane] ?? 0)
      }
    })
    gauge('dispenserd_parked_receivers', 'Receivers waiting for a job on the lane (blocked receive_block requests and idle runner slots).', ['lane'], (add, { lanes }) => {
      for (const [lane, idle] of Object.entries(lanes.idle)) add({ lane }, idle)
    })
    gauge('dispenserd_oldest_ready_job_age_seconds', 'Age of the lane\'s oldest ready job (0 when none is ready).', ['lane'], (add, { lanes }) => {
      const now = Date.now() / 1000
      for (const lane of Object.keys(lanes.queued)) {
        const at = lanes.oldestReady[lane]
        add({ lane }, at === undefined ? 0 : Math.max(0, now - at))
      }
    })
    gauge('dispenserd_lane_paused', '1 while the lane is paused (serves no receiver, starts no run).', ['lane'], (add, { lanes }) => {
      const paused = sources.pausedLanes()
      for (const lane of Object.keys(lanes.queued)) add({ lane }, paused.has(lane) ? 1 : 0)
    })
    counter('dispenserd_jobs_scheduled_total', 'Jobs scheduled, by lane.', ['lane'], perLane((t) => t.scheduled))
    counter('dispenserd_jobs_received_total', 'Jobs handed to a consumer or a runner slot, by lane.', ['lane'], perLane((t) => t.received))
    counter('dispenserd_jobs_acked_total', 'Leases acked, by lane.', ['lane'], perLane((t) => t.acked))
    counter('dispenserd_jobs_released_total', 'Leased jobs given back by their consumer, by lane.', ['lane'], perLane((t) => t.released))
    counter('dispenserd_jobs_expired_total', 'Leases that ran out (the job went back), by lane.', ['lane'], perLane((t) => t.expired))
    counter('dispenserd_jobs_retried_total', 'Dead jobs queued again by an operator, by lane.', ['lane'], perLane((t) => t.retried))
    counter('dispenserd_jobs_dead_lettered_total', 'Jobs whose run failed with no retries left (now dead), by lane.', ['lane'], perLane((t) => t.deadLettered))
    counter('dispenserd_jobs_deleted_total', 'Jobs deleted by an operator, by lane.', ['lane'], perLane((t) => t.deleted))
    registry.registerMetric(histogram('dispenserd_delivery_latency_seconds', 'Time from a job\'s schedule to its hand-over to a consumer or runner slot, by lane.', (add) => {
      for (const [lane, tally] of read().tallies) if (tally.latency.count > 0) add({ lane }, tally.latency)
    }))
    registry.registerMetric(histogram('dispenserd_run_duration_seconds', 'How long runs of runner lanes took, by lane.', (add) => {
      for (const [lane, tally] of read().tallies) if (tally.runs.count > 0) add({ lane }, tally.runs)
    }))
    counter('jobs_total', 'Number of jobs.', ['namespace', 'action', 'status'], (add, scrape) => {
      for (const sample of runnerJobsTotal(scrape.runners, scrape.tallies)) add(sample.labels as JobsTotalSample['labels'] & Labels, sample.value)
    })
    gauge('dispenserd_runner_concurrency', 'Runs a runner lane may have at once.', ['lane', 'runner'], (add, { runners }) => {
      for (const [lane, c] of Object.entries(runners)) add({ lane, runner: c.runner }, c.concurrency)
    })

    gauge('dispenserd_kept_jobs', 'Every job kept (ready, leased, delayed, dead): what max_queued_jobs counts.', [], (add) => add({}, sources.totals().queued_jobs_total))
    gauge('dispenserd_kept_bytes', 'UTF-8 bytes of the messages of every job kept: what max_queued_bytes counts.', [], (add) => add({}, sources.totals().queued_bytes))
    gauge('dispenserd_parked_clients', 'Blocked receive_block requests (what max_parked_receivers counts).', [], (add) => add({}, sources.totals().parked_receivers))
    gauge('dispenserd_next_job_number', 'The job number the next scheduled job gets.', [], (add) => add({}, sources.totals().next_job_num))
    counter('dispenserd_finished_jobs_forgotten_total', 'Succeeded jobs forgotten before keep_finished, to stay within max_finished_jobs and max_finished_bytes.', [], (add) => add({}, sources.totals().finished_jobs_forgotten))
    gauge('dispenserd_store_info', 'The job store in use (always 1).', ['store'], (add, { store }) => add({ store: store.kind }, 1))
    gauge('dispenserd_store_writable', '1 while changes can be made durable; 0 while the journal is broken or the Redis store cannot be reached (changes are refused).', [], (add, { store }) => add({}, store.journal?.broken === true || store.reachable === false ? 0 : 1))
    persistence(gauge, counter)
    gauge('dispenserd_task_last_duration_seconds', 'How long a background task\'s last run took.', ['task'], (add) => {
      for (const [task, s] of Object.entries(sources.tasks())) if (s.last_duration_ms !== null) add({ task }, s.last_duration_ms / 1000)
    })
    counter('dispenserd_task_runs_total', 'Runs of each background task.', ['task'], (add) => {
      for (const [task, s] of Object.entries(sources.tasks())) add({ task }, s.runs)
    })
    counter('dispenserd_task_errors_total', 'Failed runs of each background task.', ['task'], (add) => {
      for (const [task, s] of Object.entries(sources.tasks())) add({ task }, s.errors)
    })
    collectDefaultMetrics({ register: registry })
    // Gauges named like counters (promtool's lint refuses them); the same counts are in
    // nodejs_active_handles, _requests and _resources, by type.
    for (const name of ['nodejs_active_handles_total', 'nodejs_active_requests_total', 'nodejs_active_resources_total']) registry.removeSingleMetric(name)
    return registry
  }
}

type Define = (name: string, help: string, labelNames: string[], fill: Fill) => void

/** Snapshot and journal: durations, sizes and errors. */
function persistence(gauge: Define, counter: Define): void {
  gauge('dispenserd_snapshot_last_duration_seconds', 'How long the last snapshot took to write.', [], (add, { store }) => {
    const ms = store.snapshot?.lastDurationMs
    if (ms !== undefined && ms !== null) add({}, ms / 1000)
  })
  gauge('dispenserd_snapshot_last_success_timestamp_seconds', 'When the last snapshot was written.', [], (add, { store }) => {
    const at = store.snapshot?.lastSavedAt
    if (at !== undefined && at !== null) add({}, at / 1000)
  })
  gauge('dispenserd_snapshot_last_jobs', 'Jobs in the last snapshot.', [], (add, { store }) => {
    const jobs = store.snapshot?.lastJobs
    if (jobs !== undefined && jobs !== null) add({}, jobs)
  })
  gauge('dispenserd_snapshot_last_bytes', 'Size of the last queue.json written.', [], (add, { store }) => {
    const bytes = store.snapshot?.lastBytes
    if (bytes !== undefined && bytes !== null) add({}, bytes)
  })
  counter('dispenserd_snapshot_errors_total', 'Snapshots that could not be written.', [], (add, { store }) => {
    if (store.snapshot !== undefined) add({}, store.snapshot.errors)
  })
  gauge('dispenserd_journal_generation', 'The journal file being appended to (journal.NNNNNNNN.log).', [], (add, { store }) => {
    if (store.journal !== undefined) add({}, store.journal.generation)
  })
  gauge('dispenserd_journal_bytes', 'Bytes in the current journal file (a snapshot empties the journal).', [], (add, { store }) => {
    if (store.journal !== undefined) add({}, store.journal.bytes)
  })
  counter('dispenserd_journal_written_bytes_total', 'Bytes appended to the journal.', [], (add, { store }) => {
    if (store.journal !== undefined) add({}, store.journal.writtenBytes)
  })
  counter('dispenserd_journal_fsyncs_total', 'fdatasyncs of journal files.', [], (add, { store }) => {
    if (store.journal !== undefined) add({}, store.journal.fsyncs)
  })
  counter('dispenserd_journal_fsync_seconds_total', 'Time spent in fdatasyncs of journal files (divide by fsyncs_total for the mean).', [], (add, { store }) => {
    if (store.journal !== undefined) add({}, store.journal.fsyncMsTotal / 1000)
  })
  gauge('dispenserd_journal_fsync_max_seconds', 'The longest fdatasync of a journal file since start.', [], (add, { store }) => {
    if (store.journal !== undefined) add({}, store.journal.fsyncMsMax / 1000)
  })
  counter('dispenserd_journal_errors_total', 'Journal writes and fsyncs that failed.', [], (add, { store }) => {
    if (store.journal !== undefined) add({}, store.journal.errors)
  })
}

/**
 * A histogram read from Buckets kept elsewhere, in the shape prom-client's registry renders
 * (it has no histogram whose counts can be set).
 */
function histogram(name: string, help: string, each: (add: (labels: Labels, buckets: Buckets) => void) => void) {
  const get = () => {
    const values: { labels: Record<string, string | number>; value: number; metricName: string }[] = []
    each((labels, buckets) => {
      let cumulative = 0
      buckets.bounds.forEach((bound, i) => {
        cumulative += buckets.counts[i]!
        values.push({ labels: { ...labels, le: bound }, value: cumulative, metricName: `${name}_bucket` })
      })
      values.push({ labels: { ...labels, le: '+Inf' }, value: buckets.count, metricName: `${name}_bucket` })
      values.push({ labels, value: buckets.sum, metricName: `${name}_sum` })
      values.push({ labels, value: buckets.count, metricName: `${name}_count` })
    })
    return { name, help, type: 'histogram' as const, values, aggregator: 'sum' as const }
  }
  // prom-client's registry needs only these members of a metric.
  return { name, help, type: 'histogram', aggregator: 'sum', get, reset() {} } as unknown as Gauge
}

/**
 * The shapes of dispenserd's replies, as a client sees them (README's API section; the OpenAPI
 * document in docs/openapi.yaml is the reference and a test checks real replies against it).
 */

import type { Job } from './job'

export type { Job } from './job'

/** A job handed out under a lease: ack, release or touch it with its hash and `lease_token`. */
export interface LeasedJob extends Job {
  lease_expires: string
  lease_token: string
}

/** How a run of a runner lane's job ended. */
export interface RunReport {
  state: 'succeeded' | 'failed' | 'dead'
  started_at: string
  finished_at: string
  duration_ms: number
  reason: string | null
  exit_code: number | null
  http_status: number | null
  output: string
}

export type JobState = 'queued' | 'running' | 'leased' | 'delayed' | 'dead' | 'succeeded'

/** `GET /job`. */
export interface JobDetail extends Job {
  state: JobState
  attempts: number
  last_run?: RunReport
}

/** `GET /failed`: one page of a lane's dead jobs, newest first. */
export interface FailedPage {
  lane: string
  total: number
  offset: number
  jobs: (Job & Partial<RunReport>)[]
}

/** One job to schedule. `arguments` is for runner lanes, instead of a JSON `message`. */
export interface NewJob {
  message?: string
  arguments?: Record<string, unknown>
  /** Runner lanes of the http runner: the job's own target URL. */
  target?: string
  lane?: string
  priority?: number
  /** Seconds before the job is ready. */
  delay?: number
}

export interface Scheduled {
  job_num: number
  hash: string
}

export interface ScheduledBatch {
  count: number
  first_job_num: number
  last_job_num: number
}

/** ack, release, touch, retry, delete. */
/** `/pause` and `/resume`: the lane and whether it is paused now. */
export interface LanePaused {
  lane: string
  paused: boolean
}

export interface JobRef {
  job_num: number
  hash: string
  /** touch: the lease's new deadline. */
  lease_expires?: string
  lease_token?: string
}

/** `GET /` payload.runners: one runner lane's counters (the daemon's own type). */
export type { LaneCounters as RunnerCounters } from '../runners/dispatcher'
import type { LaneCounters as RunnerCounters } from '../runners/dispatcher'

/** `GET /` with the detail (open, or with the token when auth_token is set). */
export interface Status {
  name: string
  version: string
  timestamp: string
  status: string
  payload: {
    /** Without the token on a daemon with auth_token: only this. */
    details?: string
    system?: { pid: number; cpu_count: number }
    queued_jobs?: Record<string, number>
    idle_workers?: Record<string, number>
    leased_jobs?: Record<string, number>
    delayed_jobs?: Record<string, number>
    server?: {
      uptime_seconds: number
      http_engine: string
      next_job_num: number
      queued_jobs_total: number
      queued_bytes: number
      parked_receivers: number
      leased_jobs_total: number
      dead_jobs_total: number
      finished_jobs_forgotten: number
      memory: { rss: number; heap_used: number }
    }
    runners?: Record<string, RunnerCounters>
    snapshot?: { enabled: boolean; file?: string; last_saved_at?: string | null; last_error?: string | null }
    journal?: { enabled: boolean; fsync?: string; generation?: number; error?: string | null }
    /** Background tasks by name. */
    tasks?: Record<string, { runs: number; last_run_at: string | null; last_duration_ms: number | null; last_error: string | null }>
  }
}

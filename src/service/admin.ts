import { ApiError } from '../errors'
import type { Logger } from '../log'
import type { Job } from '../queue/job'
import type { JobPage, PageQuery } from '../queue/pages'
import type { FoundJob } from '../queue/queue'
import { type JobStore, type Maybe, noSuchLane, then } from '../store/job-store'
import { type BulkRequest, type BulkResult, runBulk } from './bulk'
import type { EventStream } from './events'
import type { LanePolicy } from './job-service'
import type { QueueLimits } from './limits'
import type { DrainRates } from './rates'

/** What the job service lends the admin: its store, events and the parts of its policy moves need. */
export interface AdminDeps {
  store: JobStore
  events: EventStream
  rates: DrainRates
  logger: Logger
  lanes(): LanePolicy | undefined
  limits(): QueueLimits
  /** Hands a lane's ready jobs to its parked receivers. */
  drain(lane: string): void
  /** The service's commit path: `value` once the change just made is durable. */
  durable<T>(value: T, failure: () => string): Maybe<T>
}

/** A job as found, with its ETA when queued: seconds until it is handed over at its lane's recent rate. */
export interface FoundWithEta extends FoundJob {
  eta: number | null
}

/** A page, with each ready job's position and ETA (serving order; null for other states). */
export interface PageWithEtas extends JobPage {
  positions: (number | null)[]
  etas: (number | null)[]
}

/**
 * What operators (the dashboard, curl) do beyond the original's API: find a job by hash or number
 * on any lane, page through a lane's jobs by state, move jobs between lanes and priorities, pause
 * and resume lanes, kill running jobs, and act on many jobs at once. Part of the job service: it
 * goes through the service's commit path and tells its event stream, as the service's own calls do.
 */
export class JobAdmin {
  constructor(private readonly deps: AdminDeps) {}

  find(hash: string): Maybe<FoundWithEta | undefined> {
    return then(this.deps.store.find(hash), (found) => this.withEta(found))
  }

  findByNumber(jobNum: number): Maybe<FoundWithEta | undefined> {
    return then(this.deps.store.findByNumber(jobNum), (found) => this.withEta(found))
  }

  page(query: PageQuery): Maybe<PageWithEtas> {
    return then(this.deps.store.page(query), (page) => {
      // Serving order: the first job's position gives the rest's (ready jobs only).
      const first = query.state === 'ready' && query.sort === 'order' && query.q === undefined && page.jobs.length > 0 ? this.deps.store.find(page.jobs[0]!.hash) : undefined
      return then(first ?? undefined, (found) => {
        const start = found?.position
        // Contiguous in serving order only without a search (with one, the jobs between were left out).
        const positions = page.jobs.map((_, i) => (start === undefined || query.sort !== 'order' || query.q !== undefined ? null : start + i))
        const etas = positions.map((position) => (position === null ? null : this.deps.rates.eta(query.lane, position)))
        return { ...page, positions, etas }
      })
    })
  }

  /** Moves a ready or delayed job to `lane` at `priority` (ApiError when the lane would refuse it). */
  relocate(hash: string, lane: string, priority: number): Maybe<Job> {
    return then(this.move(hash, lane, priority), (job) => this.deps.durable(job, () => `job ${job.jobNum} is moved in memory only, until the next snapshot`))
  }

  /** Pauses or resumes a lane: it hands no job to receivers or runner slots while paused. */
  setPaused(lane: string, paused: boolean): Maybe<{ lane: string; paused: boolean }> {
    const { store } = this.deps
    // A shared store checks the lane itself: another process may have made it a moment ago.
    if (store.answersAtOnce && !store.hasLane(lane)) throw noSuchLane(lane)
    return then(store.setPaused(lane, paused), () => {
      if (!paused) this.deps.drain(lane)
      this.deps.logger.info({ lane, reason: 'by request' }, paused ? 'lane paused' : 'lane resumed')
      return this.deps.durable({ lane, paused }, () => `lane ${JSON.stringify(lane)} is ${paused ? 'paused' : 'resumed'} in memory only, until the next snapshot`)
    })
  }

  /** Stops a running job for good: its run is aborted and the job is dead (retry it to run it again). */
  kill(hash: string): Maybe<Job> {
    return then(this.deps.store.find(hash), (found) => {
      if (found === undefined) throw new ApiError('job_not_found', `no job has hash ${JSON.stringify(hash)}`)
      const killed = found.state === 'running' && this.deps.lanes()?.kill?.(hash) === true
      if (!killed && found.state === 'running' && !this.deps.store.answersAtOnce) {
        // Runs are this process's children: one running on another frontend is out of its reach.
        throw new ApiError('not_supported', `job ${found.job.jobNum} is running on another frontend: with the Redis store, POST /kill stops only runs of the frontend that gets the request (send it to each frontend of lane ${JSON.stringify(found.job.lane)}; the memory store, one process, always reaches the run)`)
      }
      if (!killed) {
        throw new ApiError('conflict', `job ${found.job.jobNum} is ${found.state}, not running: only a running job can be killed`)
      }
      this.deps.logger.warn({ lane: found.job.lane, job_num: found.job.jobNum, hash, reason: 'killed by request' }, 'job killed')
      return found.job
    })
  }

  /** A bulk action on hashes or a filter; see bulk.ts. */
  bulk(request: BulkRequest): Promise<BulkResult> {
    const { store } = this.deps
    return runBulk(request, {
      page: (query) => store.page(query),
      apply: (hash) => this.applyOne(request, hash),
      whenDurable: (callback) => store.whenDurable(callback),
      defersReplies: store.defersReplies,
    })
  }

  /** One job of a bulk action: changed, told to the event stream, but not waited on (the bulk waits once, at the end). */
  private applyOne(request: BulkRequest, hash: string): Maybe<Job> {
    const { store, events, drain } = this.deps
    switch (request.action) {
      case 'delete':
        return then(store.delete(hash), (job) => {
          events.emit('deleted', job)
          return job
        })
      case 'retry':
        return then(store.retryDead(hash), (job) => {
          events.emit('retried', job)
          drain(job.lane)
          return job
        })
      case 'relocate':
      case 'reprioritize':
        return then(store.find(hash), (found) => {
          if (found === undefined) throw new ApiError('job_not_found', `no job has hash ${JSON.stringify(hash)}`)
          return this.move(hash, request.lane ?? found.job.lane, request.priority ?? found.job.priority, found.job)
        })
    }
  }

  /** A move, checked against the target lane (its runner's rules, max_lanes); no durability wait. */
  private move(hash: string, lane: string, priority: number, known?: Job): Maybe<Job> {
    const { store, lanes, limits, drain } = this.deps
    const check = (job: Job): void => {
      if (job.lane !== lane) lanes()?.checkMessage(lane, job.message, false)
      const { maxLanes } = limits()
      if (!store.hasLane(lane) && maxLanes > 0 && store.usage().lanes >= maxLanes) throw new ApiError('limit_reached', `there are ${store.usage().lanes} lanes; max_lanes is ${maxLanes}`)
    }
    const found = known ?? then(store.find(hash), (f) => f?.job)
    return then(found, (job) => {
      if (job !== undefined) check(job)
      return then(store.relocate(hash, lane, priority), (moved) => {
        drain(moved.lane)
        return moved
      })
    })
  }

  private withEta(found: FoundJob | undefined): FoundWithEta | undefined {
    if (found === undefined) return undefined
    return { ...found, eta: found.position === undefined ? null : this.deps.rates.eta(found.job.lane, found.position) }
  }
}

import os from 'node:os'
import { ApiError, CODES } from '../errors'
import type { Logger } from '../log'
import { type Job, jobMembersJson, rfc3339 } from '../queue/job'
import type { Receiver } from '../queue/lane'
import { encodeJobsByLane } from '../queue/listing'
import type { Queue } from '../queue/queue'
import { Exchange, errorBody } from './exchange'
import { Pacer } from './pacer'
import { laneField, parseJsonObject, parseSchedule } from './requests'

/** The original's throttle: 25 ms between operations. */
const THROTTLE_MS = 25

export interface RoutesOptions {
  queue: Queue
  logger: Logger
  version: string
  throttleReceive: boolean
  throttleSchedule: boolean
  /** Extra status fields (server, snapshot) supplied by whoever wires the daemon. */
  statusExtras: () => Record<string, unknown>
}

const EMPTY_QUEUE_BODY = JSON.stringify({ status: 'ok', code: CODES.empty_queue.code, message: 'empty queue' })

function jobReply(job: Job): string {
  return `{"status":"ok","code":${CODES.ok.code},${jobMembersJson(job)}}`
}

/**
 * The dispenserd endpoints: each parses its request, makes one queue call and answers. Nothing
 * here knows about uWebSockets.js beyond the Exchange it answers on.
 */
export class Routes {
  private closing = false
  private readonly receivePacer: Pacer | undefined
  private readonly schedulePacer: Pacer | undefined
  /** Operations waiting for their throttle slot, so shutdown can answer them at once. */
  private readonly waitingForSlot = new Map<NodeJS.Timeout, () => void>()

  constructor(private readonly options: RoutesOptions) {
    this.receivePacer = options.throttleReceive ? new Pacer(THROTTLE_MS) : undefined
    this.schedulePacer = options.throttleSchedule ? new Pacer(THROTTLE_MS) : undefined
  }

  /** From now on nothing is queued or taken; parked receivers are answered 503 and disconnected. */
  beginShutdown(): void {
    this.closing = true
    this.options.queue.dismissAllParked()
    for (const [timer, run] of this.waitingForSlot) {
      clearTimeout(timer)
      run()
    }
    this.waitingForSlot.clear()
  }

  status(ex: Exchange): void {
    const { queued, idle } = this.options.queue.stats()
    const body = {
      name: 'dispenserd',
      version: this.options.version,
      timestamp: rfc3339(Math.floor(Date.now() / 1000)),
      status: 'ok',
      payload: {
        system: { pid: process.pid, cpu_count: os.availableParallelism() },
        queued_jobs: queued,
        idle_workers: idle,
        ...this.options.statusExtras(),
      },
    }
    ex.send(200, JSON.stringify(body, null, 2))
  }

  jobs(ex: Exchange): void {
    ex.send(200, encodeJobsByLane(this.options.queue))
  }

  notFound(ex: Exchange, url: string): void {
    ex.sendError(new ApiError('not_found', `no such endpoint: ${url}`))
  }

  schedule(ex: Exchange, body: Buffer): void {
    this.guard(ex, () => {
      const request = parseSchedule(parseJsonObject(body))
      this.paced(this.schedulePacer, ex, () => {
        if (!request.batch) {
          const job = this.options.queue.schedule(request.job)
          this.options.logger.debug({ lane: job.lane, job_num: job.jobNum, priority: job.priority }, 'scheduled')
          ex.send(200, `{"status":"ok","code":0,"job_num":${job.jobNum},"hash":"${job.hash}"}`)
          return
        }
        // Validated as a whole before this point, so the batch is queued entirely or not at all.
        const jobs = this.options.queue.scheduleMany(request.jobs)
        const first = jobs[0]!.jobNum
        const last = jobs[jobs.length - 1]!.jobNum
        this.options.logger.debug({ count: jobs.length, first_job_num: first, last_job_num: last }, 'scheduled a batch')
        ex.send(200, `{"status":"ok","code":0,"count":${jobs.length},"first_job_num":${first},"last_job_num":${last}}`)
      })
    })
  }

  receiveNoblock(ex: Exchange, body: Buffer): void {
    this.guard(ex, () => {
      const lane = laneField(parseJsonObject(body))
      this.paced(this.receivePacer, ex, () => {
        const job = this.options.queue.receive(lane)
        if (job === undefined) {
          ex.send(200, EMPTY_QUEUE_BODY)
        } else if (!ex.send(200, jobReply(job))) {
          this.options.queue.requeue(job)
        }
      })
    })
  }

  receiveBlock(ex: Exchange, body: Buffer): void {
    this.guard(ex, () => {
      const lane = laneField(parseJsonObject(body))
      this.paced(this.receivePacer, ex, () => {
        const receiver = new ParkedReceive(ex, this.options.logger)
        ex.onAbort(() => this.options.queue.cancel(lane, receiver))
        this.options.queue.awaitJob(lane, receiver)
      })
    })
  }

  /** Answers errors thrown by a handler: ApiErrors as they say, anything else as a logged 500. */
  private guard(ex: Exchange, handler: () => void): void {
    try {
      handler()
    } catch (err) {
      if (err instanceof ApiError) {
        ex.sendError(err)
      } else {
        this.options.logger.error({ err }, 'request failed')
        ex.sendError(new ApiError('internal', 'internal error'))
      }
    }
  }

  /** Runs `operation` now, or after its throttle slot, unless the daemon began shutting down. */
  private paced(pacer: Pacer | undefined, ex: Exchange, operation: () => void): void {
    const run = (): void => {
      if (!ex.open) return
      if (this.closing) {
        ex.sendError(new ApiError('shutting_down', 'dispenserd is shutting down'), true)
        return
      }
      this.guard(ex, operation)
    }
    const wait = pacer?.reserve(Date.now()) ?? 0
    if (wait <= 0) {
      run()
      return
    }
    const timer = setTimeout(() => {
      this.waitingForSlot.delete(timer)
      run()
    }, wait)
    this.waitingForSlot.set(timer, run)
  }
}

/** A parked `/receive_block`: the queue hands it a job, or shutdown dismisses it. */
class ParkedReceive implements Receiver {
  constructor(
    private readonly ex: Exchange,
    private readonly logger: Logger,
  ) {}

  deliver(job: Job): boolean {
    if (this.ex.send(200, jobReply(job))) return true
    this.logger.warn({ lane: job.lane, job_num: job.jobNum, reason: 'receiver disconnected' }, 'job put back')
    return false
  }

  dismiss(): void {
    this.ex.send(503, errorBody(CODES.shutting_down.code, 'dispenserd is shutting down'), true)
  }
}

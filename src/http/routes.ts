import os from 'node:os'
import { ApiError } from '../errors'
import type { Logger } from '../log'
import { rfc3339 } from '../queue/job'
import { jobsByLaneBytes } from '../queue/listing'
import type { Queue } from '../queue/queue'
import type { Exchange } from './exchange'
import { Pacer } from './pacer'
import { Outbox, ParkedReceive } from './parked'
import { EMPTY_QUEUE_BODY, SHUTTING_DOWN, jobReply } from './replies'
import { type BlockingReceive, type ScheduleRequest, laneField, parseBlockingReceive, parseJsonObject, parseSchedule } from './requests'

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

/**
 * An endpoint that takes a body: `parse` validates it (throwing ApiError), `run` makes the queue
 * call and answers. Split so that a throttled request is validated at once and run in its slot.
 */
interface Operation<Input> {
  parse(fields: Record<string, unknown>): Input
  run(ex: Exchange, input: Input): void
  pacer: Pacer | undefined
}

/**
 * The dispenserd endpoints. Each parses its request, makes one queue call and answers; nothing
 * here knows about uWebSockets.js beyond the Exchange it answers on. The request path allocates
 * no closures unless a throttle defers it: it runs for every job.
 */
export class Routes {
  private closing = false
  /** Operations waiting for their throttle slot, so shutdown can answer them at once. */
  private readonly waitingForSlot = new Map<NodeJS.Timeout, () => void>()
  private readonly scheduleOp: Operation<ScheduleRequest>
  private readonly receiveNoblockOp: Operation<string>
  private readonly receiveBlockOp: Operation<BlockingReceive>
  private readonly outbox: Outbox

  constructor(private readonly options: RoutesOptions) {
    const { queue, logger } = options
    const schedulePacer = options.throttleSchedule ? new Pacer(THROTTLE_MS) : undefined
    const receivePacer = options.throttleReceive ? new Pacer(THROTTLE_MS) : undefined
    this.scheduleOp = {
      parse: parseSchedule,
      pacer: schedulePacer,
      run(ex, request) {
        if (!request.batch) {
          const job = queue.schedule(request.job)
          logger.debug({ lane: job.lane, job_num: job.jobNum, priority: job.priority }, 'scheduled')
          ex.send(200, `{"status":"ok","code":0,"job_num":${job.jobNum},"hash":"${job.hash}"}`)
          return
        }
        // Validated as a whole before this point, so the batch is queued entirely or not at all.
        const jobs = queue.scheduleMany(request.jobs)
        const first = jobs[0]!.jobNum
        const last = jobs[jobs.length - 1]!.jobNum
        logger.debug({ count: jobs.length, first_job_num: first, last_job_num: last }, 'scheduled a batch')
        ex.send(200, `{"status":"ok","code":0,"count":${jobs.length},"first_job_num":${first},"last_job_num":${last}}`)
      },
    }
    this.receiveNoblockOp = {
      parse: laneField,
      pacer: receivePacer,
      run(ex, lane) {
        const job = queue.receive(lane)
        if (job === undefined) ex.send(200, EMPTY_QUEUE_BODY)
        else if (!ex.send(200, jobReply(job))) queue.returnUndelivered(job)
      },
    }
    const outbox = new Outbox(queue, logger)
    this.outbox = outbox
    this.receiveBlockOp = {
      parse: parseBlockingReceive,
      pacer: receivePacer,
      run(ex, { lane, timeoutMs }) {
        const receiver = new ParkedReceive(ex, outbox)
        ex.onAbort(() => {
          queue.cancel(lane, receiver)
          receiver.stopTimer()
        })
        queue.awaitJob(lane, receiver)
        if (timeoutMs === undefined || !ex.open || receiver.handedJob) return
        // Still parked: give up after the timeout. (uWS has no TCP keepalive, so a client that
        // vanishes silently would otherwise stay parked until restart.)
        receiver.timer = setTimeout(() => {
          if (queue.cancel(lane, receiver)) ex.send(200, EMPTY_QUEUE_BODY)
        }, timeoutMs)
      },
    }
  }

  /** From now on nothing is queued or taken; parked receivers are answered 503 and disconnected. */
  beginShutdown(): void {
    this.closing = true
    // Dismiss first: a reply in the outbox that fails puts its job back, and with no receiver
    // left parked the job stays in the lane, where the final snapshot will find it.
    this.options.queue.dismissAllParked()
    this.outbox.flush()
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
    ex.send(200, jobsByLaneBytes(this.options.queue))
  }

  notFound(ex: Exchange, url: string): void {
    ex.sendError(new ApiError('not_found', `no such endpoint: ${url}`))
  }

  schedule(ex: Exchange, body: Buffer): void {
    this.handle(ex, body, this.scheduleOp)
  }

  receiveNoblock(ex: Exchange, body: Buffer): void {
    this.handle(ex, body, this.receiveNoblockOp)
  }

  receiveBlock(ex: Exchange, body: Buffer): void {
    this.handle(ex, body, this.receiveBlockOp)
  }

  private handle<Input>(ex: Exchange, body: Buffer, op: Operation<Input>): void {
    let input: Input
    try {
      input = op.parse(parseJsonObject(body))
    } catch (err) {
      this.fail(ex, err)
      return
    }
    const wait = op.pacer?.reserve(Date.now()) ?? 0
    if (wait <= 0) {
      this.execute(ex, op, input)
      return
    }
    const run = (): void => this.execute(ex, op, input)
    const timer = setTimeout(() => {
      this.waitingForSlot.delete(timer)
      run()
    }, wait)
    this.waitingForSlot.set(timer, run)
  }

  /** Runs a validated operation, unless its client left or the daemon began shutting down. */
  private execute<Input>(ex: Exchange, op: Operation<Input>, input: Input): void {
    if (!ex.open) return
    if (this.closing) {
      ex.sendError(new ApiError('shutting_down', SHUTTING_DOWN), true)
      return
    }
    try {
      op.run(ex, input)
    } catch (err) {
      this.fail(ex, err)
    }
  }

  /** Answers an error: an ApiError as it says, anything else as a logged 500. */
  private fail(ex: Exchange, err: unknown): void {
    if (err instanceof ApiError) {
      ex.sendError(err)
      return
    }
    this.options.logger.error({ err }, 'request failed')
    ex.sendError(new ApiError('internal', 'internal error'))
  }
}

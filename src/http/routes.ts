import os from 'node:os'
import { ApiError } from '../errors'
import type { Logger } from '../log'
import { rfc3339 } from '../queue/job'
import { encodeJobsByLane } from '../queue/listing'
import type { Queue } from '../queue/queue'
import type { Exchange } from './exchange'
import { Pacer } from './pacer'
import { ParkedReceive } from './parked'
import { CommitPath } from './commit'
import { type JobOperations, jobOperations } from './job-operations'
import type { Operation } from './operation'
import { type Durability, EMPTY_QUEUE_BODY, SHUTTING_DOWN, journalFailed } from './replies'
import {
  type BlockingReceive,
  type DispatchJobRequest,
  type Receive,
  type ScheduleRequest,
  parseBlockingReceive,
  parseDispatchJob,
  parseJsonObject,
  parseReceive,
  parseSchedule,
  queryFields,
} from './requests'

/** Runs `check`, prefixing an ApiError's message with the batch entry it is about. */
function withIndex(i: number, check: () => void): void {
  try {
    check()
  } catch (err) {
    if (err instanceof ApiError) throw new ApiError(err.codeName, `jobs[${i}]: ${err.message}`)
    throw err
  }
}

/** The original's throttle: 25 ms between operations. */
const THROTTLE_MS = 25

export interface RoutesOptions {
  queue: Queue
  logger: Logger
  version: string
  throttleReceive: boolean
  throttleSchedule: boolean
  /** The journal, when there is one: replies to changes wait until they are on disk. */
  durability?: Durability
  /** Which lanes runners serve, and what their messages must look like. */
  lanes?: LanePolicy
  /** Dispatch Jobs from git, when an operator turned them on. */
  dispatch?: DispatchIntake
  /** Extra status fields (server, snapshot) supplied by whoever wires the daemon. */
  statusExtras: () => Record<string, unknown>
}

/** What routes need to know of runner lanes (the dispatcher answers). */
export interface LanePolicy {
  runnerOf(lane: string): string | undefined
  /**
   * Throws ApiError when `message` does not fit the lane's runner and arguments, or came as
   * top-level `arguments` (`fromArguments`) to a lane without a runner.
   */
  checkMessage(lane: string, message: string, fromArguments: boolean): void
}

/** What `POST /v0/jobs/queue` needs (the dispatch repositories answer). */
export interface DispatchIntake {
  /** The lane Dispatch Jobs run on. */
  readonly lane: string
  /** Why a job may not name this repository (not under dispatch.allowed_repos, or not an address), or undefined. */
  refusal(repoUrl: string): string | undefined
  /**
   * Fetches the commit's Dispatchfile and checks the arguments; resolves to the job's message.
   * Rejects with an ApiError (bad arguments) or an Error (unknown repository, commit or file).
   * `signal` fires when the client leaves (or at shutdown): the fetch stops unless others wait for it.
   */
  prepare(repoUrl: string, ref: string, args: unknown, signal: AbortSignal): Promise<string>
}


/**
 * The dispenserd endpoints. Each parses its request, makes one queue call and answers; nothing
 * here knows about uWebSockets.js beyond the Exchange it answers on. The request path allocates
 * no closures unless a throttle or the journal defers it: it runs for every job.
 */
export class Routes {
  private closing = false
  /** Operations waiting for their throttle slot, so shutdown can answer them at once. */
  private readonly waitingForSlot = new Map<NodeJS.Timeout, () => void>()
  private readonly scheduleOp: Operation<ScheduleRequest>
  private readonly receiveNoblockOp: Operation<Receive>
  private readonly receiveBlockOp: Operation<BlockingReceive>
  /** Leases and inspection: ack, release, touch, retry, delete, job, failed. */
  private readonly jobOps: JobOperations
  private readonly commits: CommitPath
  /** Dispatch Jobs being checked (their fetches), stopped at shutdown. */
  private readonly intakes = new Set<AbortController>()

  constructor(private readonly options: RoutesOptions) {
    const { queue, logger, durability, lanes } = options
    /** Runner lanes hand their jobs to runners only. */
    const notRunnerLane = (lane: string): void => {
      const runner = lanes?.runnerOf(lane)
      if (runner !== undefined) throw new ApiError('conflict', `lane ${JSON.stringify(lane)} is served by the ${runner} runner; its jobs are not handed to receivers`)
    }
    const commits = new CommitPath(queue, logger, durability)
    this.commits = commits
    const answer = (ex: Exchange, body: string, failure: string): void => commits.answer(ex, body, failure)
    this.scheduleOp = {
      parse: parseSchedule,
      pacer: undefined,
      changes: true,
      run(ex, request) {
        if (lanes !== undefined) {
          if (request.batch) request.jobs.forEach((job, i) => withIndex(i, () => lanes.checkMessage(job.lane, job.message, job.fromArguments === true)))
          else lanes.checkMessage(request.job.lane, request.job.message, request.job.fromArguments === true)
        }
        if (!request.batch) {
          const job = queue.schedule(request.job)
          logger.debug({ lane: job.lane, job_num: job.jobNum, priority: job.priority }, 'scheduled')
          answer(ex, `{"status":"ok","code":0,"job_num":${job.jobNum},"hash":"${job.hash}"}`, `job ${job.jobNum} is queued in memory only, until the next snapshot`)
          return
        }
        // Validated as a whole before this point, so the batch is queued entirely or not at all.
        const jobs = queue.scheduleMany(request.jobs)
        const first = jobs[0]!.jobNum
        const last = jobs[jobs.length - 1]!.jobNum
        logger.debug({ count: jobs.length, first_job_num: first, last_job_num: last }, 'scheduled a batch')
        answer(ex, `{"status":"ok","code":0,"count":${jobs.length},"first_job_num":${first},"last_job_num":${last}}`, `jobs ${first}-${last} are queued in memory only, until the next snapshot`)
      },
    }
    /** Hands over the lane's next job if one is ready (through the commit path); false when there is none. */
    const takeReady = (ex: Exchange, lane: string, leaseMs: number | undefined): boolean => {
      if (leaseMs === undefined) {
        const job = queue.receive(lane)
        if (job !== undefined) commits.handOver(ex, job, undefined, false)
        return job !== undefined
      }
      const lease = queue.receiveLeased(lane, leaseMs)
      if (lease !== undefined) commits.handOver(ex, lease.job, lease, false)
      return lease !== undefined
    }
    this.receiveNoblockOp = {
      parse: parseReceive,
      pacer: undefined,
      changes: true,
      undoneIfUndelivered: true,
      run(ex, { lane, leaseMs }) {
        notRunnerLane(lane)
        if (!takeReady(ex, lane, leaseMs)) ex.send(200, EMPTY_QUEUE_BODY)
      },
    }
    this.receiveBlockOp = {
      parse: parseBlockingReceive,
      pacer: undefined,
      changes: true,
      undoneIfUndelivered: true,
      run(ex, { lane, timeoutMs, leaseMs }) {
        notRunnerLane(lane)
        // A job ready now is answered within this request, as receive_noblock answers: only a
        // reply that waits makes uWS close a connection that pipelines another request behind it.
        if (takeReady(ex, lane, leaseMs)) return
        const receiver = new ParkedReceive(ex, commits, leaseMs)
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
    this.jobOps = jobOperations(queue, logger, answer)
    this.setThrottles(options.throttleReceive, options.throttleSchedule)
  }

  /** At start and on a reload; a throttle already on keeps its next slot. */
  setThrottles(receive: boolean, schedule: boolean): void {
    if (schedule !== (this.scheduleOp.pacer !== undefined)) this.scheduleOp.pacer = schedule ? new Pacer(THROTTLE_MS) : undefined
    if (receive !== (this.receiveNoblockOp.pacer !== undefined)) {
      // Both receives share one slot, as in the original.
      this.receiveNoblockOp.pacer = this.receiveBlockOp.pacer = receive ? new Pacer(THROTTLE_MS) : undefined
    }
  }

  /** From now on nothing is queued or taken; parked receivers are answered 503 and disconnected. */
  beginShutdown(): void {
    this.closing = true
    // Dismiss first: a hand-over whose reply fails puts its job back, and with no receiver left
    // parked the job stays in the lane, where the final snapshot will find it. (With the journal,
    // hand-overs wait for it; shutdown waits for the journal before the snapshot.)
    this.options.queue.dismissAllParked()
    this.commits.flush()
    for (const [timer, run] of this.waitingForSlot) {
      clearTimeout(timer)
      run()
    }
    this.waitingForSlot.clear()
    for (const intake of this.intakes) intake.abort('shutting down')
  }

  /**
   * `GET /`. Open to health checks even with auth_token set; then only requests carrying the token
   * get the per-lane detail (`detailed`), the others a small fixed-size answer. Either way it is
   * built from counters kept as jobs change: O(lanes), never O(jobs).
   */
  status(ex: Exchange, detailed: boolean): void {
    const head = { name: 'dispenserd', version: this.options.version, timestamp: rfc3339(Math.floor(Date.now() / 1000)), status: 'ok' }
    if (!detailed) {
      ex.send(200, JSON.stringify({ ...head, payload: { details: 'send "Authorization: Bearer <auth_token>" for the queues, lanes and server state' } }, null, 2))
      return
    }
    const { queued, idle, leased, delayed } = this.options.queue.stats()
    const body = {
      ...head,
      payload: {
        system: { pid: process.pid, cpu_count: os.availableParallelism() },
        queued_jobs: queued,
        idle_workers: idle,
        leased_jobs: leased,
        delayed_jobs: delayed,
        ...this.options.statusExtras(),
      },
    }
    ex.send(200, JSON.stringify(body, null, 2))
  }

  /** Streamed from a snapshot of the lanes (arrays of pointers), encoded a piece at a time as the client reads. */
  jobs(ex: Exchange): void {
    ex.stream(encodeJobsByLane(this.options.queue.readyJobs(), { reusePieces: true }))
  }

  /** `POST /v0/jobs/queue`: checks the job against its repository's Dispatchfile, then queues it. */
  queueDispatchJob(ex: Exchange, body: Buffer): void {
    let request: DispatchJobRequest
    try {
      request = parseDispatchJob(parseJsonObject(body))
    } catch (err) {
      this.fail(ex, err)
      return
    }
    void this.dispatchJob(ex, request).catch((err: unknown) => this.fail(ex, err))
  }

  private async dispatchJob(ex: Exchange, request: DispatchJobRequest): Promise<void> {
    const { dispatch, queue, durability, logger } = this.options
    if (dispatch === undefined) throw new ApiError('forbidden', 'Dispatch Jobs are off: an operator turns them on with dispatch.allowed_repos')
    const refused = dispatch.refusal(request.repoUrl)
    if (refused !== undefined) throw new ApiError('forbidden', refused)
    if (request.lane !== undefined && request.lane !== dispatch.lane) throw new ApiError('invalid_data', `Dispatch Jobs run on lane ${JSON.stringify(dispatch.lane)}`)
    let message: string
    const intake = new AbortController()
    ex.onAbort(() => intake.abort('the client left'))
    this.intakes.add(intake)
    try {
      message = await dispatch.prepare(request.repoUrl, request.ref, request.arguments, intake.signal)
    } catch (err) {
      if (this.closing) throw new ApiError('shutting_down', SHUTTING_DOWN)
      throw err instanceof ApiError ? err : new ApiError('invalid_data', (err as Error).message)
    } finally {
      this.intakes.delete(intake)
    }
    if (!ex.open) return
    if (this.closing) throw new ApiError('shutting_down', SHUTTING_DOWN)
    if (durability?.broken !== undefined) throw journalFailed(durability.broken, 'nothing was changed; changes are refused until a snapshot succeeds')
    const job = queue.schedule({ lane: dispatch.lane, priority: request.priority, message })
    logger.info({ lane: job.lane, job_num: job.jobNum, repo: request.repoUrl, ref: request.ref }, 'dispatch job queued')
    this.commits.answer(ex, `{"status":"ok","code":0,"job_num":${job.jobNum},"hash":"${job.hash}"}`, `job ${job.jobNum} is queued in memory only, until the next snapshot`)
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

  ack(ex: Exchange, body: Buffer): void {
    this.handle(ex, body, this.jobOps.ack)
  }

  release(ex: Exchange, body: Buffer): void {
    this.handle(ex, body, this.jobOps.release)
  }

  touch(ex: Exchange, body: Buffer): void {
    this.handle(ex, body, this.jobOps.touch)
  }

  retry(ex: Exchange, body: Buffer): void {
    this.handle(ex, body, this.jobOps.retry)
  }

  delete(ex: Exchange, body: Buffer): void {
    this.handle(ex, body, this.jobOps.delete)
  }

  /** `GET /job?hash=...` (or the hash in a JSON body). */
  job(ex: Exchange, query: string, body: Buffer): void {
    this.handle(ex, body, this.jobOps.job, query)
  }

  /** `GET /failed?lane=...&offset=...&limit=...` (or those in a JSON body). */
  failed(ex: Exchange, query: string, body: Buffer): void {
    this.handle(ex, body, this.jobOps.failed, query)
  }

  private handle<Input>(ex: Exchange, body: Buffer, op: Operation<Input>, query = ''): void {
    let input: Input
    try {
      input = op.parse(query === '' ? parseJsonObject(body) : { ...queryFields(query), ...parseJsonObject(body) })
    } catch (err) {
      this.fail(ex, err)
      return
    }
    const wait = op.pacer?.reserve(Date.now()) ?? 0
    // A change whose reply waits (for its throttle slot, or for the journal) and that stays made
    // though its client leaves is held: uWS closes a connection on which a request arrives while
    // a reply is pending. It runs once the rest of this read is parsed, and only if the connection
    // is still open, so a request pipelined behind it in the same read leaves nothing changed;
    // and the connection is not read until it is answered, so a request written later waits and
    // is answered after it, in order. (A receive needs neither: a job it cannot deliver goes back.)
    const held = op.undoneIfUndelivered !== true && (wait > 0 || (op.changes && this.options.durability !== undefined))
    if (!held && wait <= 0) {
      this.execute(ex, op, input)
      return
    }
    if (held) ex.holdReading()
    const run = (): void => this.execute(ex, op, input)
    if (wait <= 0) {
      setImmediate(run)
      return
    }
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
    const broken = op.changes ? this.options.durability?.broken : undefined
    if (broken !== undefined) {
      ex.sendError(journalFailed(broken, 'nothing was changed; changes are refused until a snapshot succeeds'))
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
    if (err instanceof ApiError) ex.sendError(err)
    else ex.fault(err)
  }
}

import os from 'node:os'
import { ApiError } from '../errors'
import type { Logger } from '../log'
import { Job, rfc3339 } from '../queue/job'
import type { ScheduleInput } from '../queue/queue'
import { encodeJobsByLane } from '../queue/listing'
import { journalFailed } from '../service/commit'
import type { JobService } from '../service/job-service'
import { type Taken, isPromise, then, when } from '../store/job-store'
import { answer, fail } from './answer'
import type { Exchange } from './exchange'
import { type AdminOperations, adminOperations } from './admin-operations'
import { PAGE_FIELDS } from './admin-requests'
import { type JobOperations, jobOperations } from './job-operations'
import { type CronOperations, cronOperations } from './cron-operations'
import { WaitedSchedule } from './waited-schedule'
import type { CronScheduler } from '../service/cron'
import type { Operation } from './operation'
import { Pacer } from './pacer'
import { HeldChanges } from './held-changes'
import { Outbox, ParkedReceive } from './parked'
import { EMPTY_QUEUE_BODY, SHUTTING_DOWN, duplicateReply, jobReply, jobsReply, scheduledReply, uniqueBatchReply } from './replies'
import {
  type BlockingReceive,
  type DispatchJobRequest,
  type Receive,
  type ScheduleRequest,
  parseBlockingReceive,
  parseDispatchJob,
  parseJsonObject,
  parseReceive,
  parseHash,
  parseSchedule,
  queryFields,
} from './requests'

const READY_BODY = '{"status":"ok","code":0,"ready":true}'

/** A single schedule's reply: made once, where an arrow written in the call was a closure per request. */
const firstScheduledReply = (jobs: Job[]): Buffer => scheduledReply(jobs[0]!)

/** The original's throttle: 25 ms between operations. */
const THROTTLE_MS = 25

export interface RoutesOptions {
  service: JobService
  logger: Logger
  version: string
  throttleReceive: boolean
  throttleSchedule: boolean
  /** Whether replies to changes wait for the journal (so a pipelined request must wait its turn). */
  journaled: boolean
  /** Dispatch Jobs from git, when an operator turned them on. */
  dispatch?: DispatchIntake
  /** Cron entries at run time. */
  cron: CronScheduler
  /** Extra status fields (server, snapshot) supplied by whoever wires the daemon. */
  statusExtras: () => Record<string, unknown>
  /** `GET /lanes`: every lane's counts and counters (the dashboard's overview), as JSON. */
  overview?: () => object
  /** `GET /metrics`: the exposition in the format an Accept header asks for. */
  metrics?: { render(accept: string): Promise<{ contentType: string; body: string }> }
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
 * The dispenserd endpoints. Each parses its request, makes one call to the job service and answers
 * with what it returns (once the change is durable: the service's commit path); nothing here knows
 * about uWebSockets.js beyond the Exchange it answers on, or about where jobs are kept.
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
  /** The operators' endpoints: pages, moves, pause and resume, kill, bulk. */
  private readonly adminOps: AdminOperations
  private readonly cronOps: CronOperations
  /** Without a journal: replies to parked receivers, sent once the current handler has returned. */
  private readonly outbox: Outbox | undefined
  /** Dispatch Jobs being checked (their fetches), stopped at shutdown. */
  private readonly intakes = new Set<AbortController>()
  /** Schedules waiting for their jobs to finish (`wait`), answered at shutdown. */
  private readonly waits = new Set<WaitedSchedule>()
  private readonly heldChanges: HeldChanges

  constructor(private readonly options: RoutesOptions) {
    const { service } = options
    this.heldChanges = new HeldChanges(() => service.writeNow())
    const outbox = options.journaled ? undefined : new Outbox(service)
    this.outbox = outbox
    const waits = this.waits
    this.scheduleOp = {
      parse: parseSchedule,
      pacer: undefined,
      changes: true,
      run(ex, request) {
        if (!request.batch && request.waitMs !== undefined) {
          new WaitedSchedule(ex, service, request.waitMs, waits).start(request.job)
          return
        }
        if (request.unique) {
          const outcomes = service.scheduleUnique(request.batch ? request.jobs : [request.job], request.batch)
          if (!request.batch) answer(ex, outcomes, ([o]) => (o instanceof Job ? scheduledReply(o) : duplicateReply(o!)))
          else answer(ex, outcomes, uniqueBatchReply)
          return
        }
        // Validated as a whole: the batch is queued entirely or not at all. (No job carries a unique
        // key here, so each is a plain ScheduleInput.)
        const jobs = service.schedule((request.batch ? request.jobs : [request.job]) as ScheduleInput[], request.batch)
        if (!request.batch) answer(ex, jobs, firstScheduledReply)
        else answer(ex, jobs, (all) => `{"status":"ok","code":0,"count":${all.length},"first_job_num":${all[0]!.jobNum},"last_job_num":${all[all.length - 1]!.jobNum}}`)
      },
    }
    /** Takes the lane's next job if one is ready and answers with it; false when there is none. */
    const takeReady = (ex: Exchange, lane: string, leaseMs: number | undefined): boolean => {
      const taken = service.receive(lane, leaseMs)
      if (taken === undefined) return false
      if (isPromise(taken)) {
        when(taken, (t) => deliver(ex, t), (err) => fail(ex, err))
        return true
      }
      // At once (the in-memory store without a journal): no closures to make, as `when` would.
      try {
        deliver(ex, taken)
      } catch (err) {
        fail(ex, err)
      }
      return true
    }
    /** Answers a receive with its take: the job (put back if the reply cannot go out), or "empty queue". */
    const deliver = (ex: Exchange, t: Taken | undefined): void => {
      if (t === undefined) ex.send(200, EMPTY_QUEUE_BODY)
      else if (!ex.send(200, jobReply(t.job, t.lease))) service.undelivered(t)
    }
    /** A batch receive: up to `count` jobs now, in one reply (an empty batch when none is ready). */
    const takeBatch = (ex: Exchange, lane: string, leaseMs: number | undefined, count: number): void => {
      when(
        service.receiveMany(lane, leaseMs, count),
        (taken) => {
          if (!ex.send(200, jobsReply(taken))) for (const t of taken) service.undelivered(t)
        },
        (err) => fail(ex, err),
      )
    }
    this.receiveNoblockOp = {
      parse: parseReceive,
      pacer: undefined,
      changes: true,
      undoneIfUndelivered: true,
      run(ex, { lane, leaseMs, count }) {
        if (count !== undefined) takeBatch(ex, lane, leaseMs, count)
        else if (!takeReady(ex, lane, leaseMs)) ex.send(200, EMPTY_QUEUE_BODY)
      },
    }
    this.receiveBlockOp = {
      parse: parseBlockingReceive,
      pacer: undefined,
      changes: true,
      undoneIfUndelivered: true,
      run(ex, { lane, timeoutMs, leaseMs, count, min }) {
        service.refuseRunnerLane(lane)
        // Jobs ready now are answered within this request, as receive_noblock answers: only a
        // reply that waits makes uWS close a connection that pipelines another request behind it.
        // (A store over the network answers later anyway: the receiver parks, and its take decides.)
        if (service.answersAtOnce) {
          if (count === undefined && service.hasReady(lane) && takeReady(ex, lane, leaseMs)) return
          if (count !== undefined && service.batchReady(lane, min)) return takeBatch(ex, lane, leaseMs, count)
        }
        const receiver = new ParkedReceive(ex, outbox, leaseMs, count, min)
        ex.onAbort(() => {
          service.cancel(lane, receiver)
          receiver.stopTimer()
        })
        service.awaitJob(lane, receiver)
        if (timeoutMs === undefined || !ex.open || receiver.handedJob) return
        // Still parked: give up after the timeout. (uWS has no TCP keepalive, so a client that
        // vanishes silently would otherwise stay parked until restart.) A batch that waited for
        // `min` jobs takes what there is by then.
        receiver.timer = setTimeout(() => {
          if (!service.cancel(lane, receiver)) return
          // An outage is not an empty lane: a consumer must not take one for the other.
          const unavailable = service.unavailable(lane)
          if (unavailable !== undefined) ex.sendError(unavailable)
          else if (count === undefined) ex.send(200, EMPTY_QUEUE_BODY)
          else takeBatch(ex, lane, leaseMs, count)
        }, timeoutMs)
      },
    }
    this.jobOps = jobOperations(service)
    this.adminOps = adminOperations(service, parseHash)
    this.cronOps = cronOperations(options.cron)
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
    this.options.service.dismissAll()
    this.outbox?.flush()
    for (const [timer, run] of this.waitingForSlot) {
      clearTimeout(timer)
      run()
    }
    this.waitingForSlot.clear()
    for (const intake of this.intakes) intake.abort('shutting down')
    for (const wait of [...this.waits]) wait.giveUp()
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
    const { queued, idle, leased, delayed } = this.options.service.laneStats()
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

  /**
   * `GET /healthz`: the process is alive and serving requests (200 even while its store cannot be
   * reached: a restart would not help), with the store's type and state. Never behind auth.
   */
  healthz(ex: Exchange): void {
    const { service } = this.options
    ex.send(200, JSON.stringify({ status: 'ok', code: 0, alive: true, store: { type: service.storeStats().kind, state: service.unavailable() === undefined ? 'up' : 'down' } }))
  }

  /**
   * `GET /readyz`: whether the daemon should get traffic now: not while it shuts down, nor while
   * changes cannot be made durable (the journal is broken), nor while its store (Redis) cannot be
   * reached. 503 with the reason otherwise. The daemon listens only once its store is loaded, so a
   * daemon that answers has its jobs.
   */
  readyz(ex: Exchange): void {
    const unavailable = this.options.service.unavailable()
    if (this.closing) ex.sendError(new ApiError('shutting_down', `not ready: ${SHUTTING_DOWN}`))
    else if (unavailable !== undefined) ex.sendError(new ApiError('store_unavailable', `not ready: ${unavailable.message}`))
    else if (this.options.service.broken !== undefined) ex.sendError(journalFailed(this.options.service.broken, 'not ready: changes are refused until a snapshot succeeds'))
    else ex.send(200, READY_BODY)
  }

  /** `GET /lanes`: the dashboard's overview of every lane. */
  lanes(ex: Exchange): void {
    const { overview } = this.options
    if (overview === undefined) this.notFound(ex, ex.url)
    else ex.send(200, JSON.stringify({ status: 'ok', code: 0, ...overview() }))
  }

  /** `GET /metrics`: Prometheus text, or OpenMetrics when the Accept header asks for it. */
  metrics(ex: Exchange, accept: string): void {
    const { metrics } = this.options
    if (metrics === undefined) {
      this.notFound(ex, ex.url)
      return
    }
    metrics.render(accept).then(
      ({ contentType, body }) => ex.sendBody(200, contentType, body),
      (err: unknown) => fail(ex, err),
    )
  }

  /**
   * `GET /jobs`. With a paging field in the query string (lane, offset, limit, cursor, state, q,
   * sort): a page of one lane's jobs. Without: the original's listing of every lane, streamed from a
   * snapshot of the lanes (arrays of pointers), encoded a piece at a time as the client reads.
   */
  jobs(ex: Exchange, query: string): void {
    const fields = query === '' ? undefined : queryFields(query)
    if (fields !== undefined && PAGE_FIELDS.some((name) => name in fields)) {
      this.handle(ex, Buffer.alloc(0), this.adminOps.page, query)
      return
    }
    when(
      this.options.service.readyJobs(),
      (lanes) => ex.stream(encodeJobsByLane(lanes, { reusePieces: true })),
      (err) => fail(ex, err),
    )
  }

  /** The operators' endpoints that take a body (and, for GET, a query string): move, pause, resume, kill, bulk. */
  admin(name: 'move' | 'pause' | 'resume' | 'kill' | 'bulk', ex: Exchange, body: Buffer): void {
    // Each operation parses its own input and runs on it: the union of their types is not needed here.
    this.handle(ex, body, this.adminOps[name] as unknown as Operation<unknown>)
  }

  /** `POST /v0/jobs/queue`: checks the job against its repository's Dispatchfile, then queues it. */
  queueDispatchJob(ex: Exchange, body: Buffer): void {
    let request: DispatchJobRequest
    try {
      request = parseDispatchJob(parseJsonObject(body))
    } catch (err) {
      fail(ex, err)
      return
    }
    this.dispatchJob(ex, request).catch((err: unknown) => fail(ex, err))
  }

  private async dispatchJob(ex: Exchange, request: DispatchJobRequest): Promise<void> {
    const { dispatch, service, logger } = this.options
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
    if (service.broken !== undefined) throw journalFailed(service.broken, 'nothing was changed; changes are refused until a snapshot succeeds')
    // The dispatch lane refuses /schedule; its jobs come only this way, checked above.
    const jobs = then(service.schedule([{ lane: dispatch.lane, priority: request.priority, message }], false, { checked: true }), (queued) => {
      const job = queued[0]!
      logger.info({ lane: job.lane, job_num: job.jobNum, hash: job.hash, repo: request.repoUrl, ref: request.ref }, 'dispatch job queued')
      return job
    })
    answer(ex, jobs, scheduledReply)
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

  /** `/cron`, `/cron/add`, `/cron/pause`, `/cron/resume`, `/cron/delete`. */
  cron(ex: Exchange, action: keyof CronOperations, body: Buffer): void {
    this.handle(ex, body, this.cronOps[action] as Operation<unknown>)
  }

  private handle<Input>(ex: Exchange, body: Buffer, op: Operation<Input>, query = ''): void {
    let input: Input
    try {
      input = op.parse(query === '' ? parseJsonObject(body) : { ...queryFields(query), ...parseJsonObject(body) })
    } catch (err) {
      fail(ex, err)
      return
    }
    const wait = op.pacer?.reserve(Date.now()) ?? 0
    // A change whose reply waits (for its throttle slot, or for the journal) and that stays made
    // though its client leaves is held: uWS closes a connection on which a request arrives while
    // a reply is pending. It runs once the rest of this read is parsed, and only if the connection
    // is still open, so a request pipelined behind it in the same read leaves nothing changed;
    // and the connection is not read until it is answered, so a request written later waits and
    // is answered after it, in order. (A receive needs neither: a job it cannot deliver goes back.)
    const held = op.undoneIfUndelivered !== true && (wait > 0 || (op.changes && this.options.journaled))
    if (!held && wait <= 0) this.execute(ex, op, input)
    else this.later(ex, op, input, wait, held)
  }

  /**
   * Runs a validated operation once its throttle slot comes or the journal is written (see handle).
   * A method of its own: the closure here made `handle` allocate its variables' context on every
   * request, the many that run at once included.
   */
  private later<Input>(ex: Exchange, op: Operation<Input>, input: Input, wait: number, held: boolean): void {
    const run = (): void => this.execute(ex, op, input)
    if (wait <= 0) {
      // Waits for the journal only: its reading is held only if the reply cannot go out at once.
      this.heldChanges.add(ex, run)
      return
    }
    if (held) ex.holdReading()
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
    const broken = op.changes ? this.options.service.broken : undefined
    if (broken !== undefined) {
      ex.sendError(journalFailed(broken, 'nothing was changed; changes are refused until a snapshot succeeds'))
      return
    }
    try {
      op.run(ex, input)
    } catch (err) {
      fail(ex, err)
    }
  }
}

import { randomBytes } from 'node:crypto'
import type { Cluster, Redis } from 'ioredis'
import { ApiError, OutcomeUnknown } from '../../errors'
import type { Logger } from '../../log'
import { Held } from '../../queue/held'
import type { HistoryLimits } from '../../queue/history'
import { Job, MAX_PRIORITY, type RunReport } from '../../queue/job'
import { stampOf } from '../../queue/stamp'
import type { FoundJob, JobState, LaneSnapshot, ScheduleInput } from '../../queue/queue'
import { type JobPage, type PageQuery, SCAN_BUDGET, listPage } from '../../queue/pages'
import type { BackgroundTasks } from '../../service/tasks'
import type { CronRecord } from '../../queue/cron-table'
import { UniqueHold } from '../../queue/unique'
import { type Expired, type JobStore, type LaneCounts, type StoreStats, type Taken, type Usage, noSuchLane, notOffered } from '../job-store'
import { COMMAND_TIMEOUT_MS, type Client, ConnectionState, type Outcome, type RedisTarget, Script, connect, storeError } from './connection'
import { Coalescer } from './coalesce'
import { CountsCache } from './counts'
import { HashCodec, decodeRecord, encodeRecord, metaKey } from './keys'
import { LaneDirectory } from './lane-directory'
import { JobNumbers } from './job-numbers'
import { META_SCRIPTS } from './lua/meta'
import { LANE_SCRIPTS, type LaneScript } from './scripts'
import { CallsUnderWay } from './under-way'
import { Wakeups } from './wakeups'

export interface RedisStoreOptions {
  target: RedisTarget
  /** Starts every key (default `dispenserd`): several daemons' data can share one Redis. */
  prefix: string
  logger: Logger
  /** Runner lanes and their concurrency, enforced across every frontend (the lane's leases are its runs). */
  runnerLanes?: ReadonlyMap<string, () => number>
  history?: HistoryLimits
  /** How long a command may take (default 1000 ms); tests on a loaded machine give more. */
  commandTimeoutMs?: number
}

/** How often one frontend (whichever takes the turn) moves what is due back into every lane. */
const SWEEP_MS = 1000
/** Expired leases and ended delays one script moves at most (the rest: the next call). */
const REAP_LIMIT = 1000
/** Ready jobs read per script by GET /jobs. */
const PAGE = 1000
/**
 * Jobs a search of ready jobs looks at per page, at most: a script holds Redis (every frontend's
 * lanes on that server) while it runs, so this is a tenth of what the in-memory store looks at.
 */
export const REDIS_SCAN_BUDGET = SCAN_BUDGET / 10
/** Jobs of one other state (leased, delayed, dead, succeeded) a page reads at most, to sort them. */
export const LIST_CAP = SCAN_BUDGET

type Reply = (string | number | null)[]

/**
 * Jobs kept in Redis (one server, or a cluster): any number of stateless dispenserd processes
 * ("frontends") serve the same lanes. Every lane operation is one atomic Lua script on the lane's
 * hash slot (scripts.ts); deadlines use the Redis server's clock; hints between frontends use
 * sharded pub/sub (wakeups.ts). What GET / and the limits read (counts, usage, lanes) is cached
 * here and refreshed every second. Every call answers with a promise; a Redis that is down or
 * slow answers 503 code 14 (connection.ts), and the store reconnects by itself.
 */
export class RedisStore implements JobStore {
  readonly defersReplies = true
  readonly answersAtOnce = false
  readonly kind = 'redis'
  readonly broken = undefined
  private readonly client: Client
  private readonly subscriber: Redis | Cluster
  private readonly connection: ConnectionState
  private readonly scripts: Record<LaneScript, Script>
  private readonly lanes: LaneDirectory
  private readonly wakeups: Wakeups
  private readonly numbers: JobNumbers
  private readonly tally: CountsCache
  private codec: HashCodec | undefined
  /** This process among the frontends: names its wake-up channels and its place among the waiting. */
  private readonly frontend = randomBytes(6).toString('hex')
  private readonly tokenPrefix = `${randomBytes(4).toString('hex')}-`
  private tokens = 0
  /** Each job this store made, by its member in its lane (for put-backs and run ends). */
  private readonly members = new WeakMap<Job, string>()
  /** Leases found expired by takes, reported by the next sweep (the job log's "job put back"). */
  private expiredByTakes: Job[] = []
  private readonly declared = new Set<string>()
  /** Lanes whose last script failed for want of Redis (on a cluster, one shard can be down alone). */
  private readonly failing = new Set<string>()
  private readonly sweepToken = randomBytes(8).toString('hex')
  /** Paused lanes as of the last count read, and this frontend's own pauses and resumes since. */
  private paused = new Set<string>()
  /**
   * Cron entries' records, kept by this frontend only: each frontend runs the config file's
   * entries, and a slot's unique key (held in Redis) lets only one of them queue the slot's job.
   */
  private readonly cron = new Map<string, CronRecord>()
  /** Schedules, receives and acks of one lane in one turn: one script each (coalesce.ts). */
  private readonly scheduling = new Coalescer((lane, groups: { input: ScheduleInput; jobNum: number }[][]) => this.scheduleGroups(lane, groups), ownError)
  private readonly taking = new Coalescer((_, takes: { lane: string; leaseMs: number | undefined }[]) => this.takeEach(takes), ownError)
  private readonly acking = new Coalescer((lane, acks: AckArgs[]) => this.ackEach(lane, acks), ownError)
  /** Calls to Redis under way: close() waits for them. */
  private readonly underWay = new CallsUnderWay()

  constructor(private readonly options: RedisStoreOptions) {
    const { logger, prefix } = options
    this.client = connect(options.target, options.commandTimeoutMs)
    this.subscriber = 'url' in options.target ? (this.client as Redis).duplicate() : this.client
    this.scripts = Object.fromEntries(Object.entries(LANE_SCRIPTS).map(([name, lua]) => [name, new Script(lua)])) as Record<LaneScript, Script>
    this.lanes = new LaneDirectory(prefix)
    this.numbers = new JobNumbers(metaKey(prefix, 'job_num'))
    this.tally = new CountsCache(this.scripts.counts)
    this.wakeups = new Wakeups(this.subscriber, logger, (lane) => void this.laneCall(lane, 'pass', [], 'change').catch(() => undefined))
    this.connection = new ConnectionState(this.client, logger, () => this.whenReady())
    if (this.subscriber !== this.client) this.subscriber.on('error', () => undefined)
  }

  /** Connects in the background (the daemon serves GET / while Redis is down) and starts the chores. */
  start(tasks: BackgroundTasks): void {
    this.client.connect().catch(() => undefined)
    if (this.subscriber !== this.client) (this.subscriber as Redis).connect().catch(() => undefined)
    this.wakeups.start()
    tasks.add('store counts', () => this.refresh()).every(1000)
  }

  async close(): Promise<void> {
    this.wakeups.stop()
    await this.settle()
    if (this.subscriber !== this.client) this.subscriber.disconnect()
    await this.client.quit().catch(() => this.client.disconnect())
  }

  /**
   * Sends what is gathered and waits until no call is under way, nor any call their answers
   * started (a reply that cannot be delivered puts its job back): QUIT goes after them all. The
   * daemon closes its connections once the store is closed, so without this a request read
   * before a SIGTERM was sent after QUIT (never made, never answered), or made and its reply
   * cut off (a job taken for it lost). Each call ends within the command timeout; a deadline
   * bounds the wait all the same.
   */
  private async settle(): Promise<void> {
    const deadline = Date.now() + 3 * (this.options.commandTimeoutMs ?? COMMAND_TIMEOUT_MS)
    const coalescers = [this.scheduling, this.taking, this.acking]
    while (Date.now() < deadline) {
      for (const coalescer of coalescers) coalescer.flush()
      await this.underWay.ended(deadline)
      // What the answers start (replies, put-backs, calls gathered anew) runs before this.
      await new Promise((resolve) => setImmediate(resolve))
      if (this.underWay.size === 0 && !coalescers.some((coalescer) => coalescer.gathering)) return
    }
  }

  private whenReady(): void {
    // The server may have come back without its data (no persistence, a lost last second): lane ids
    // then start again, and one cached from before could name another lane now. Ids and the hash
    // secret are read afresh before anything is served again.
    this.codec = undefined
    this.lanes.forget()
    // ready() catches its own failures (and tries again); nothing is left to reject.
    this.ready().catch(() => undefined)
  }

  /** What the connection needs once (again) up: the hash secret, the lanes, checks of the server. */
  private async ready(): Promise<void> {
    const { logger, prefix } = this.options
    try {
      const policy = await this.maxmemoryPolicy()
      if (policy !== undefined && policy !== 'noeviction') {
        throw new Error(`Redis's maxmemory-policy is ${policy}: it would delete jobs when memory runs out; set it to noeviction`)
      }
      await this.client.set(metaKey(prefix, 'secret'), randomBytes(32).toString('hex'), 'NX')
      const secret = await this.client.get(metaKey(prefix, 'secret'))
      this.codec = new HashCodec(Buffer.from(secret!, 'hex'))
      await this.numbers.reconnected(this.client)
      await this.lanes.refresh(this.client)
      for (const lane of [...this.declared, ...(this.options.runnerLanes?.keys() ?? [])]) await this.lanes.ensure(this.client, lane)
      await this.refresh()
      this.connection.set('up')
      logger.info({ store: 'redis', prefix, lanes: this.lanes.size }, 'the job store (Redis) is connected')
      this.wakeups.pollAll()
    } catch (err) {
      const message = (err as Error).message
      // Said once per distinct reason, not once a second while it lasts.
      if (this.connection.lastError !== message) logger.error({ err: message }, 'the job store (Redis) cannot be used; retrying every second')
      this.connection.set('down', message)
      setTimeout(() => this.whenReady(), 1000).unref()
    }
  }

  /** CONFIG GET maxmemory-policy, where the server allows it (managed services may not). */
  private async maxmemoryPolicy(): Promise<string | undefined> {
    try {
      const reply = (await this.client.call('CONFIG', 'GET', 'maxmemory-policy')) as string[]
      return reply[1]
    } catch {
      return undefined
    }
  }

  /** Re-reads the lanes and every lane's counts; marks the store up or down. */
  private async refresh(): Promise<void> {
    if (this.codec === undefined) return
    try {
      await this.lanes.refresh(this.client)
      await this.tally.refresh(this.client, this.lanes)
      this.paused = new Set(this.tally.pausedLanes())
      if (this.connection.state !== 'up') {
        this.connection.set('up')
        this.wakeups.pollAll()
      }
    } catch (err) {
      this.connection.set('down', (err as Error).message)
    }
  }

  /** The codec, once connected; before that every call answers 503 (nothing was changed). */
  private hashes(): HashCodec {
    if (this.codec === undefined) throw this.notConnected()
    return this.codec
  }

  private notConnected(): ApiError {
    return new ApiError('store_unavailable', `the job store (Redis) is not connected${this.connection.lastError === undefined ? ' yet' : ` (${this.connection.lastError})`}; nothing was changed`)
  }

  private async laneCall(lane: string, name: LaneScript, args: (string | number)[], outcome: Outcome): Promise<Reply> {
    this.hashes()
    const keys = this.lanes.keys(lane)
    try {
      const reply = (await this.underWay.run(() => this.scripts[name].run(this.client, keys.keys, [keys.channel, this.frontend, ...args]))) as Reply
      this.failing.delete(lane)
      return reply
    } catch (err) {
      const failure = storeError(err, outcome)
      if (failure instanceof ApiError && failure.codeName === 'store_unavailable') {
        this.connection.set('down', (err as Error).message)
        this.failing.add(lane)
      }
      throw failure
    }
  }

  /**
   * A job from a record of `lane` with id `laneId`, remembering its member. `hash`: the job's hash
   * when the caller named the job by it (no need to compute it again).
   */
  private job(record: string, lane: string, laneId: string, member: string, hash?: string): Job {
    const job = decodeRecord(record, lane, () => hash ?? this.hashes().encode(laneId, member))
    this.members.set(job, member)
    return job
  }

  private memberOf(job: Job): string {
    const member = this.members.get(job)
    if (member === undefined) throw new Error(`job ${job.jobNum} was not made by this store`)
    return member
  }

  /** The lane and member a hash names (ours, or an imported job's), or undefined. */
  private async locate(hash: string): Promise<{ lane: string; laneId: string; member: string } | undefined> {
    let found = this.hashes().decode(hash)
    if (found === undefined) {
      const foreign = await this.call(() => this.client.hget(metaKey(this.options.prefix, 'foreign'), hash), 'read')
      if (foreign === null) return undefined
      found = { laneId: foreign.slice(0, 8), member: foreign.slice(8) }
    }
    const lane = await this.call(() => this.lanes.nameOf(this.client, found.laneId), 'read')
    return lane === undefined ? undefined : { lane, ...found }
  }

  private async call<T>(f: () => Promise<T>, outcome: Outcome): Promise<T> {
    try {
      return await this.underWay.run(f)
    } catch (err) {
      throw storeError(err, outcome)
    }
  }

  get nextJobNum(): number {
    return this.numbers.next
  }

  hasLane(lane: string): boolean {
    return this.lanes.has(lane)
  }

  hasReady(lane: string): boolean {
    return this.wakeups.mayHaveWork(lane)
  }

  declareLane(lane: string): void {
    this.declared.add(lane)
    if (this.codec !== undefined) void this.lanes.ensure(this.client, lane).catch(() => undefined)
  }

  usage(): Usage {
    return this.tally.usage(this.lanes.size)
  }

  onWork(listener: (lane: string) => boolean): void {
    this.wakeups.onWork(listener)
  }

  /**
   * Schedules by lane, one script per lane (atomic per lane); job numbers from this frontend's
   * block. Schedules of one lane made in the same turn share that script (coalesce.ts), each
   * keeping its jobs together and in the order of their numbers.
   */
  async schedule(inputs: readonly ScheduleInput[]): Promise<Job[]> {
    refuseGroups(inputs)
    this.hashes()
    const lanes = [...indexesByLane(inputs)].map(([lane, indexes]) => ({ lane, indexes, bytes: indexes.reduce((n, i) => n + Buffer.byteLength(inputs[i]!.message), 0) }))
    // The limits count these jobs at once: the next request may be admitted before they are queued.
    for (const { indexes, bytes } of lanes) this.tally.queued(indexes.length, bytes)
    let first: number
    try {
      first = await this.call(() => this.numbers.take(this.client, inputs.length), 'change')
    } catch (err) {
      for (const { indexes, bytes } of lanes) this.tally.settled(indexes.length, bytes, false)
      throw err
    }
    const jobs: Job[] = new Array<Job>(inputs.length)
    const outcomes = await Promise.allSettled(
      lanes.map(async ({ lane, indexes, bytes }) => {
        const group = indexes.map((i) => ({ input: inputs[i]!, jobNum: first + i }))
        const placed = this.scheduling.add(lane, group, group.length, bytes)
        placed.then(
          () => this.tally.settled(indexes.length, bytes, true),
          () => this.tally.settled(indexes.length, bytes, false),
        )
        const { laneId, seq, now } = await placed
        indexes.forEach((i, k) => {
          const input = inputs[i]!
          const member = (seq + k).toString(16).padStart(12, '0')
          const job = new Job(first + i, stampOf(lane, input.priority, Math.floor(now / 1000)), input.message, this.hashes().encode(laneId, member))
          this.members.set(job, member)
          if ((input.delayMs ?? 0) > 0) job.notBefore = now + input.delayMs!
          jobs[i] = job
        })
        this.wakeups.work(lane)
      }),
    )
    const failed = outcomes.find((o) => o.status === 'rejected')
    if (failed === undefined) return jobs
    const made = lanes.filter((_, k) => outcomes[k]!.status === 'fulfilled').flatMap(({ indexes }) => indexes)
    if (made.length === 0) throw failed.reason
    // A batch is atomic per lane only: the client must learn which jobs are queued, or a resend queues them twice.
    const err = storeError(failed.reason, 'change')
    const queued = made.sort((x, y) => x - y).map((i) => `jobs[${i}]`).join(', ')
    throw new ApiError(err instanceof ApiError ? err.codeName : 'internal', `${queued} of the batch ${made.length === 1 ? 'is' : 'are'} queued (a batch over several lanes is atomic per lane only); for the others: ${err.message}`)
  }

  /** One schedule script for the groups of jobs (one per caller) of one lane; each group's first lane sequence. */
  private async scheduleGroups(lane: string, groups: { input: ScheduleInput; jobNum: number }[][]): Promise<{ laneId: string; seq: number; now: number }[]> {
    const laneId = await this.call(() => this.lanes.ensure(this.client, lane), 'change')
    const args: (string | number)[] = [0]
    for (const group of groups) for (const { input, jobNum } of group) args.push(input.priority, jobNum, input.delayMs ?? 0, input.message)
    args[0] = (args.length - 1) / 4
    const [seq, now] = (await this.laneCall(lane, 'schedule', args, 'change')) as [number, number]
    let offset = 0
    return groups.map((group) => {
      const start = seq + offset
      offset += group.length
      return { laneId, seq: start, now }
    })
  }

  /**
   * As `schedule`, with unique keys: one script per lane checks and takes each key with its job
   * (so two frontends scheduling one key at once queue it once). An input with `watchMs` has its
   * job (or the job holding its key) watched: its end is kept for `waitedEnd`.
   */
  async scheduleUnique(inputs: readonly ScheduleInput[]): Promise<(Job | UniqueHold)[]> {
    refuseGroups(inputs)
    this.hashes()
    const first = await this.call(() => this.numbers.take(this.client, inputs.length), 'change')
    const outcomes = new Array<Job | UniqueHold>(inputs.length)
    await Promise.all(
      [...indexesByLane(inputs)].map(async ([lane, indexes]) => {
        const laneId = await this.call(() => this.lanes.ensure(this.client, lane), 'change')
        const args: (string | number)[] = [indexes.length]
        for (const i of indexes) {
          const { priority, delayMs, message, unique, watchMs } = inputs[i]!
          args.push(priority, first + i, delayMs ?? 0, message, unique?.key ?? '', Math.round(unique?.forMs ?? 0), Math.round(watchMs ?? 0))
        }
        const reply = await this.laneCall(lane, 'scheduleUnique', args, 'change')
        const now = reply[0] as number
        let queued = 0
        let bytes = 0
        indexes.forEach((i, k) => {
          const input = inputs[i]!
          const [kind, member, jobNum, until] = reply.slice(1 + 4 * k, 5 + 4 * k) as [number, string, string, string]
          if (kind === 0) {
            outcomes[i] = new UniqueHold(lane, input.unique!.key, this.hashes().encode(laneId, member), Number(jobNum), until === '' ? Infinity : Number(until), undefined)
            return
          }
          const job = this.job(encodeRecord({ jobNum: first + i, created: Math.floor(now / 1000), priority: input.priority, attempts: 0, hash: '' }, input.message), lane, laneId, member)
          if ((input.delayMs ?? 0) > 0) job.notBefore = now + input.delayMs!
          outcomes[i] = job
          queued++
          bytes += Buffer.byteLength(input.message)
        })
        if (queued === 0) return
        this.tally.added(queued, bytes)
        this.wakeups.work(lane)
      }),
    )
    return outcomes
  }

  /** How a watched job ended, if it did (on any frontend). */
  async waitedEnd(hash: string): Promise<{ job: Job; state: 'succeeded' | 'dead' | 'taken' | 'deleted' } | undefined> {
    const place = await this.locate(hash)
    if (place === undefined) return undefined
    const reply = await this.laneCall(place.lane, 'ended', [place.member], 'read')
    if (reply[0] !== 1) return undefined
    const [, state, record, result] = reply as [number, 'succeeded' | 'dead' | 'taken' | 'deleted', string, string | null]
    const job = this.job(record, place.lane, place.laneId, place.member)
    if (result !== null) job.result = result
    return { job, state }
  }

  unwatch(hash: string): void {
    // Best effort: a watch nobody ends here is dropped by the sweep when its wait is over.
    void this.locate(hash)
      .then((place) => (place === undefined ? undefined : this.laneCall(place.lane, 'unwatch', [place.member], 'change')))
      .catch(() => undefined)
  }

  /**
   * Takes the lane's next job. `waiting`: receivers of this frontend still parked on the lane
   * besides this one (undefined for a receive that does not wait): when the lane is empty the
   * frontend is registered as waiting in the same script, so the next job scheduled names it.
   */
  async take(lane: string, leaseMs: number | undefined, waiting?: number): Promise<Taken | undefined> {
    try {
      // Receives that do not wait, of a lane without a runner's bound: those of one turn share a script.
      if (waiting === undefined && this.options.runnerLanes?.has(lane) !== true) return await this.taking.add(`${leaseMs ?? ''}:${lane}`, { lane, leaseMs })
      return await this.takeFrom(lane, leaseMs, waiting)
    } catch (err) {
      // Polled again within a second (and at once when Redis is back), not retried in a loop.
      this.wakeups.failed(lane)
      throw err
    }
  }

  private async takeFrom(lane: string, leaseMs: number | undefined, waiting: number | undefined): Promise<Taken | undefined> {
    this.hashes()
    const keys = this.lanes.keys(lane)
    if (waiting !== undefined) await this.wakeups.subscribe(lane, keys.channel + this.frontend)
    const epoch = this.wakeups.epoch(lane)
    const concurrency = this.options.runnerLanes?.get(lane)
    const token = leaseMs === undefined ? '' : `${this.tokenPrefix}${(++this.tokens).toString(36)}`
    const after = waiting === undefined ? 'keep' : waiting > 0 ? 'add' : 'drop'
    const knownId = await this.laneIdBeforeTake(lane)
    const reply = await this.laneCall(lane, 'take', [leaseMs ?? 0, token, waiting === undefined ? '0' : '1', concurrency?.() ?? 0, concurrency === undefined ? '0' : '1', after], 'change')
    const laneId = knownId ?? (reply[0] === 1 || reply.length > 3 ? await this.laneIdAfterTake(lane) : undefined)
    if (reply[0] === 0) {
      this.noteExpired(reply, 3, lane, laneId)
      const [, deadline, now] = reply as [number, number, number]
      this.wakeups.foundEmpty(lane, epoch, waiting !== undefined)
      if (deadline >= 0 && waiting !== undefined) this.wakeups.armDeadline(lane, Date.now() + (deadline - now))
      return undefined
    }
    this.noteExpired(reply, 5, lane, laneId)
    const [, member, record, at] = reply as [number, string, string, number]
    const job = this.job(record, lane, laneId!, member)
    if (leaseMs === undefined) return { job, lease: undefined }
    return { job, lease: new Held(job, at, leaseMs, Buffer.byteLength(job.message), token) }
  }

  /** The next jobs for `takes` receives (one lane, one lease length): one each, in order, while there are. */
  private async takeEach(takes: { lane: string; leaseMs: number | undefined }[]): Promise<(Taken | undefined)[]> {
    const { lane, leaseMs } = takes[0]!
    if (takes.length === 1) return [await this.takeFrom(lane, leaseMs, undefined)]
    const taken: (Taken | undefined)[] = await this.takeMany(lane, leaseMs, takes.length)
    while (taken.length < takes.length) taken.push(undefined)
    return taken
  }

  /**
   * Up to `count` jobs at once (batch receives), each under its own lease when leased. With
   * `waiting` set (a parked batch receiver) nothing is taken unless `min` are ready, and the
   * frontend is registered as waiting then, as `take` does.
   */
  async takeMany(lane: string, leaseMs: number | undefined, count: number, min = 1, waiting?: number): Promise<Taken[]> {
    try {
      this.hashes()
      const keys = this.lanes.keys(lane)
      if (waiting !== undefined) await this.wakeups.subscribe(lane, keys.channel + this.frontend)
      const epoch = this.wakeups.epoch(lane)
      const tokens = `${this.tokenPrefix}${(++this.tokens).toString(36)}`
      const after = waiting === undefined ? 'keep' : waiting > 0 ? 'add' : 'drop'
      const knownId = await this.laneIdBeforeTake(lane)
      const reply = await this.laneCall(lane, 'takeMany', [leaseMs ?? 0, tokens, count, waiting === undefined ? 1 : min, waiting === undefined ? '0' : '1', after], 'change')
      const n = reply[2] as number
      const laneId = knownId ?? (reply.length > 4 ? await this.laneIdAfterTake(lane) : undefined)
      this.noteExpired(reply, 4 + 2 * n, lane, laneId)
      const now = reply[1] as number
      if (reply[0] === 0) {
        const deadline = reply[3] as number
        this.wakeups.foundEmpty(lane, epoch, waiting !== undefined)
        if (deadline >= 0 && waiting !== undefined) this.wakeups.armDeadline(lane, Date.now() + (deadline - now))
        return []
      }
      const taken: Taken[] = []
      for (let k = 0; k < n; k++) {
        const job = this.job(reply[5 + 2 * k] as string, lane, laneId!, reply[4 + 2 * k] as string)
        taken.push({ job, lease: leaseMs === undefined ? undefined : new Held(job, now + leaseMs, leaseMs, Buffer.byteLength(job.message), `${tokens}.${k + 1}`) })
      }
      if (n < count) this.wakeups.foundEmpty(lane, epoch, false)
      return taken
    } catch (err) {
      this.wakeups.failed(lane)
      throw err
    }
  }

  /**
   * A take needs its lane's id for the hashes of what it takes: read before the take (undefined:
   * the lane has no job yet), since once the take has run a failure to read it loses the jobs.
   */
  private laneIdBeforeTake(lane: string): Promise<string | undefined> {
    return this.call(() => this.lanes.idOf(this.client, lane), 'read')
  }

  /** The id of a lane made while a take ran (rare); a failure now is a take made whose jobs are lost to this reply. */
  private async laneIdAfterTake(lane: string): Promise<string> {
    try {
      return (await this.lanes.idOf(this.client, lane))!
    } catch (err) {
      throw new OutcomeUnknown(`the job store (Redis) is unavailable (${(err as Error).message}); jobs were taken but could not be answered (leased ones come back when their leases end)`)
    }
  }

  readyCount(lane: string): number {
    return this.tally.byLane([lane]).queued[lane] ?? 0
  }

  private noteExpired(reply: Reply, from: number, lane: string, laneId: string | undefined): void {
    if (laneId === undefined) return
    for (let i = from; i + 1 < reply.length; i += 2) this.expiredByTakes.push(this.job(reply[i + 1] as string, lane, laneId, reply[i] as string))
  }

  async returnUndelivered({ job, lease }: Taken): Promise<boolean> {
    const member = this.memberOf(job)
    const hash = this.hashes().decode(job.hash) === undefined ? job.hash : ''
    const record = encodeRecord({ jobNum: job.jobNum, created: job.created, priority: job.priority, attempts: job.attempts, hash }, job.message)
    const args = lease === undefined ? [member, '', record] : [member, lease.token]
    const back = ((await this.laneCall(job.lane, 'putBack', args, 'change')) as unknown) === 1
    if (back) this.wakeups.work(job.lane)
    return back
  }

  /** Runs a lease script (ack, release, touch) on the job `hash` names; ApiError when no such lease is in force. */
  private async onLease(name: 'ack' | 'release' | 'touch', hash: string, token: string, extra: (lane: string) => (string | number)[]): Promise<{ job: Job; reply: Reply }> {
    const place = await this.locate(hash)
    if (place === undefined) throw notLeased(hash)
    const args: (string | number)[] = [place.member, token, ...extra(place.lane)]
    const reply = name === 'ack' ? await this.acking.add(place.lane, args as AckArgs, ackSize(args as AckArgs)) : await this.laneCall(place.lane, name, args, 'change')
    const record = reply[1] as string | null
    if (reply[0] === 1) return { job: this.job(record!, place.lane, place.laneId, place.member, hash), reply }
    if (reply[0] === 0 || record === null) throw notLeased(hash)
    const job = this.job(record, place.lane, place.laneId, place.member)
    if (this.options.runnerLanes?.has(place.lane)) {
      throw new ApiError('conflict', `job ${job.jobNum} is running on lane ${JSON.stringify(place.lane)}; its runner acks or releases it, not a consumer`)
    }
    throw new ApiError('not_leased', `job ${job.jobNum} is not leased under lease_token ${JSON.stringify(token)}: that lease ended (it expired or was released) and the job was leased again`)
  }

  /** Acks of one lane: one script (several when coalesced); each ack's reply as a lone ack would get it. */
  private async ackEach(lane: string, acks: AckArgs[]): Promise<Reply[]> {
    const reply = await this.laneCall(lane, 'ack', [acks.length, ...acks.flat()], 'change')
    return acks.map((_, i) => reply.slice(2 * i, 2 * i + 2))
  }

  /** `result`: the job is kept as succeeded, with it, for its lane's keep_finished (readable from every frontend). */
  async ack(hash: string, token: string, result?: string): Promise<Job> {
    const history = this.options.history
    const keep = (lane: string): number => (result === undefined ? 0 : (history?.keepFinishedMs(lane) ?? 0))
    const { job } = await this.onLease('ack', hash, token, (lane) => [result ?? '', keep(lane), history?.maxFinished ?? 0])
    if (result !== undefined) job.result = result
    this.tally.removed(1, Buffer.byteLength(job.message))
    return job
  }

  async release(hash: string, token: string, delayMs: number): Promise<Job> {
    const { job, reply } = await this.onLease('release', hash, token, () => [delayMs])
    if (delayMs > 0) job.notBefore = reply[2] as number
    else this.wakeups.work(job.lane)
    return job
  }

  async touch(hash: string, token: string, leaseMs: number | undefined): Promise<Held> {
    const { job, reply } = await this.onLease('touch', hash, token, () => [leaseMs ?? ''])
    return new Held(job, reply[2] as number, reply[3] as number, Buffer.byteLength(job.message), token)
  }

  /** A run's end: its lease must still be the job's, or ApiError not_leased. */
  private async finish(lease: Held, kind: 'ok' | 'dead' | 'retry', report: RunReport | undefined, delayMs: number, result?: string): Promise<Job> {
    const { job } = lease
    const history = this.options.history
    const keepMs = kind === 'ok' ? (history?.keepFinishedMs(job.lane) ?? 0) : 0
    const args = [this.memberOf(job), lease.token, kind, job.attempts, report === undefined ? '' : JSON.stringify(report), keepMs, history?.maxFinished ?? 0, delayMs, result ?? '']
    const reply = await this.laneCall(job.lane, 'finish', args, 'change')
    if (reply[0] !== 1) throw new ApiError('not_leased', `the lease on job ${job.jobNum} ended before its run did`)
    job.report = report
    if (result !== undefined) job.result = result
    if (kind === 'retry') {
      if (delayMs > 0) job.notBefore = (reply[2] as number) + delayMs
      else this.wakeups.work(job.lane)
    }
    return job
  }

  complete(lease: Held, report: RunReport, result?: string): Promise<Job> {
    return this.finish(lease, 'ok', report, 0, result)
  }

  bury(lease: Held, report: RunReport): Promise<Job> {
    return this.finish(lease, 'dead', report, 0)
  }

  retryLater(lease: Held, delayMs: number): Promise<Job> {
    return this.finish(lease, 'retry', lease.job.report, delayMs)
  }

  async retryDead(hash: string): Promise<Job> {
    const place = await this.locate(hash)
    const reply = place === undefined ? [0] : await this.laneCall(place.lane, 'retryDead', [place.member], 'change')
    if (reply[0] !== 1) throw new ApiError('job_not_found', `no dead job has hash ${JSON.stringify(hash)}`)
    this.wakeups.work(place!.lane)
    return this.job(reply[1] as string, place!.lane, place!.laneId, place!.member)
  }

  async delete(hash: string): Promise<Job> {
    const place = await this.locate(hash)
    const reply = place === undefined ? [0] : await this.laneCall(place.lane, 'delete', [place.member], 'change')
    if (reply[0] === 0) throw new ApiError('job_not_found', `no job has hash ${JSON.stringify(hash)} that can be deleted (queued, delayed or dead)`)
    const job = this.job(reply[1] as string, place!.lane, place!.laneId, place!.member)
    if (reply[0] === -1) throw new ApiError('conflict', `job ${job.jobNum} is ${this.options.runnerLanes?.has(job.lane) ? 'running' : 'leased'}; delete it once that ends`)
    this.tally.removed(1, Buffer.byteLength(job.message))
    return job
  }

  async find(hash: string): Promise<FoundJob | undefined> {
    const place = await this.locate(hash)
    if (place === undefined) return undefined
    return this.found(place.lane, place.laneId, await this.laneCall(place.lane, 'find', [place.member], 'read'))
  }

  /**
   * A job by number: each lane keeps an index of its jobs' numbers (same slot), asked lane by lane
   * at once, so O(lanes) scripts. Jobs imported by `dispenserd migrate` are found too.
   */
  async findByNumber(jobNum: number): Promise<FoundJob | undefined> {
    this.hashes()
    await this.call(() => this.lanes.refresh(this.client), 'read')
    const replies = await Promise.all(this.lanes.lanes().map(async (lane) => ({ lane, reply: await this.laneCall(lane, 'findNum', [jobNum], 'read') })))
    const hit = replies.find(({ reply }) => reply[0] !== 0)
    return hit === undefined ? undefined : this.found(hit.lane, this.lanes.cachedId(hit.lane)!, hit.reply)
  }

  /** A find script's reply as a FoundJob: {state, record, deadline, report, member, position, result}. */
  private found(lane: string, laneId: string, reply: Reply): FoundJob | undefined {
    if (reply[0] === 0) return undefined
    const [state, record, deadline, report, member, position, result] = reply as [string, string, string, string | null, string, number, string | null | undefined]
    const job = this.job(record, lane, laneId, member)
    if (report !== null) job.report = JSON.parse(report) as RunReport
    if (typeof result === 'string') job.result = result
    if (state === 'delayed') job.notBefore = Number(deadline)
    const running = state === 'leased' && this.options.runnerLanes?.has(lane) === true
    const out: FoundJob = { job, state: running ? 'running' : (state as JobState) }
    if (position >= 0) out.position = position
    return out
  }

  /**
   * A page of one lane's jobs. Ready jobs in serving order are read by rank in one script (a
   * search looks at REDIS_SCAN_BUDGET jobs at most per page); the other states are read whole (up
   * to LIST_CAP) and paged here as in memory. Ready jobs by age: ApiError not_supported (Redis
   * keeps a lane's ready jobs by priority only; reading them all to sort would hold the server).
   */
  async page(query: PageQuery): Promise<JobPage> {
    this.hashes()
    const laneId = await this.call(() => this.lanes.idOf(this.client, query.lane), 'read')
    if (laneId === undefined) return { jobs: [], total: 0, nextCursor: null }
    if (query.state === 'ready') return this.readyPage(query, laneId)
    const runner = this.options.runnerLanes?.has(query.lane) === true
    const set = { leased: runner ? undefined : 'l', running: runner ? 'l' : undefined, delayed: 'd', dead: 'dead', succeeded: 'done' }[query.state]
    const jobs: Job[] = []
    if (set !== undefined) {
      const reply = await this.laneCall(query.lane, 'listState', [set, LIST_CAP], 'read')
      for (let i = 0; i + 2 < reply.length; i += 3) {
        const job = this.job(reply[i + 1] as string, query.lane, laneId, reply[i] as string)
        if (reply[i + 2] !== null) job.report = JSON.parse(reply[i + 2] as string) as RunReport
        jobs.push(job)
      }
    }
    return listPage(jobs, query)
  }

  private async readyPage(query: PageQuery, laneId: string): Promise<JobPage> {
    if (query.sort !== 'order') {
      throw new ApiError('not_supported', `GET /jobs of ready jobs sorted by "${query.sort}" is not offered by the Redis store, which keeps ready jobs by priority only: use sort=order (the memory store offers every sort)`)
    }
    let after: { priority: string; member: string } | undefined
    if (query.cursor !== undefined) {
      const m = /^(\d{1,10})\.(\d{1,15})$/.exec(query.cursor)
      if (m === null || Number(m[1]) > MAX_PRIORITY) throw new ApiError('invalid_data', `"cursor" ${JSON.stringify(query.cursor)} is not a cursor of this lane's pages: pass a page's next_cursor as it is`)
      after = { priority: m[1]!, member: Number(m[2]).toString(16).padStart(12, '0') }
    }
    const args = [after?.member ?? '', after?.priority ?? 0, query.offset, query.limit, query.q ?? '', REDIS_SCAN_BUDGET]
    const reply = await this.laneCall(query.lane, 'readyOrder', args, 'read')
    const [total, more, lastMember, lastPriority, skipLeft] = reply as [number, number, string, string, number]
    if (more === 1 && skipLeft > 0) {
      throw new ApiError('invalid_data', `"offset" ${query.offset} is past the ${REDIS_SCAN_BUDGET} jobs a page looks at while searching over Redis: walk there with next_cursor`)
    }
    const jobs: Job[] = []
    for (let i = 5; i + 1 < reply.length; i += 2) jobs.push(this.job(reply[i + 1] as string, query.lane, laneId, reply[i] as string))
    // The cursor: the last job looked at, as priority and lane sequence (opaque to clients).
    return { jobs, total, nextCursor: more === 1 ? `${lastPriority}.${parseInt(lastMember, 16)}` : null }
  }

  /**
   * POST /move: a new priority within the job's lane, in one script. Another lane: ApiError
   * not_supported (the lanes' keys are in different hash slots, so no one script could move the
   * job atomically, and its hash names its lane).
   */
  async relocate(hash: string, lane: string, priority: number): Promise<Job> {
    const place = await this.locate(hash)
    if (place === undefined) throw new ApiError('job_not_found', `no queued or delayed job has hash ${JSON.stringify(hash)}`)
    if (place.lane !== lane) {
      throw new ApiError('not_supported', `moving a job to another lane (from ${JSON.stringify(place.lane)} to ${JSON.stringify(lane)}) is not offered by the Redis store: its lanes are in different hash slots; give only "priority" to move it within its lane (the memory store offers both)`)
    }
    const reply = await this.laneCall(lane, 'reprioritize', [place.member, priority], 'change')
    if (reply[0] === 0) throw new ApiError('job_not_found', `no queued or delayed job has hash ${JSON.stringify(hash)}`)
    const job = this.job(reply[1] as string, lane, place.laneId, place.member)
    if (reply[0] === -1) throw new ApiError('conflict', `job ${job.jobNum} is ${this.options.runnerLanes?.has(lane) ? 'running' : 'leased'}; move it once that ends`)
    if (reply[0] === -2) throw new ApiError('conflict', `job with hash ${JSON.stringify(hash)} is dead: retry it, then move it`)
    this.wakeups.work(lane)
    return job
  }

  /** POST /pause and /resume: the flag is the lane's, in Redis; every frontend's takes honour it. */
  async setPaused(lane: string, paused: boolean): Promise<void> {
    this.hashes()
    // Read from Redis when not known here yet: another frontend may have made the lane a moment ago.
    if ((await this.call(() => this.lanes.idOf(this.client, lane), 'read')) === undefined) throw noSuchLane(lane)
    await this.laneCall(lane, 'pause', [paused ? '1' : '0'], 'change')
    if (paused) this.paused.add(lane)
    else {
      this.paused.delete(lane)
      this.wakeups.work(lane)
    }
  }

  pausedLanes(): ReadonlySet<string> {
    return this.paused
  }

  stats(): StoreStats {
    return { kind: 'redis', reachable: this.unavailable() === undefined }
  }

  async deadJobs(lane: string, offset: number, limit: number): Promise<{ total: number; jobs: Job[] }> {
    const laneId = await this.call(() => this.lanes.idOf(this.client, lane), 'read')
    if (laneId === undefined) return { total: 0, jobs: [] }
    const reply = await this.laneCall(lane, 'deadPage', [offset, limit], 'read')
    const jobs: Job[] = []
    for (let i = 1; i + 2 < reply.length; i += 3) {
      const job = this.job(reply[i + 1] as string, lane, laneId, reply[i] as string)
      if (reply[i + 2] !== null) job.report = JSON.parse(reply[i + 2] as string) as RunReport
      jobs.push(job)
    }
    return { total: reply[0] as number, jobs }
  }

  /**
   * Every lane's ready jobs in serving order, read in pages of 1000 (each page is one consistent
   * step; the listing of a lane that changes meanwhile is not one snapshot).
   */
  async readyJobs(): Promise<LaneSnapshot[]> {
    await this.call(() => this.lanes.refresh(this.client), 'read')
    const out: LaneSnapshot[] = []
    for (const lane of this.lanes.lanes()) {
      const laneId = this.lanes.cachedId(lane)!
      const jobs: Job[] = []
      let last = ''
      for (;;) {
        const reply = await this.laneCall(lane, 'readyPage', [last, jobs.length, PAGE], 'read')
        for (let i = 1; i + 1 < reply.length; i += 2) jobs.push(this.job(reply[i + 1] as string, lane, laneId, reply[i] as string))
        if (reply.length - 1 < PAGE * 2) break
        last = reply[reply.length - 2] as string
      }
      out.push({ lane, count: jobs.length, parts: [jobs] })
    }
    return out
  }

  counts(): LaneCounts {
    return this.tally.byLane(this.lanes.lanes())
  }

  laneNames(): string[] {
    return this.lanes.lanes()
  }

  leasedJobs(): number {
    return this.tally.leased
  }

  finishedForgotten(): number {
    return this.tally.forgotten
  }

  uniqueKeysHeld(): number {
    return this.tally.uniqueHeld
  }

  setGroupWeights(lane: string, weights: Readonly<Record<string, number>> | undefined): void {
    // The config refuses group_weights with this store; nothing else sets them.
    if (weights !== undefined) throw notOffered(`"group_weights" (lane ${JSON.stringify(lane)})`, this.kind)
  }

  cronRecords(): CronRecord[] {
    return [...this.cron.values()]
  }

  saveCron(record: CronRecord): void {
    this.cron.set(record.name, record)
  }

  deleteCron(name: string): void {
    this.cron.delete(name)
  }

  /** The sweeper runs every second (on whichever frontend takes the turn). */
  nextDeadline(): number {
    return Date.now() + SWEEP_MS
  }

  onDeadline(): void {
    // Deadlines are Redis's: the sweep runs every SWEEP_MS whatever they are.
  }

  /**
   * The sweep: one frontend a second (SET NX on the meta slot) moves every lane's expired leases
   * and ended delays back to their place and wakes the frontends waiting there. Leases a take
   * found expired are reported here too.
   */
  async expireDue(): Promise<Expired> {
    const expired: Expired = { leases: this.expiredByTakes, lanes: new Set() }
    this.expiredByTakes = []
    // While Redis is down there is nothing to sweep (and nothing to log every second): GET / says why.
    if (this.codec === undefined || this.connection.state !== 'up') return expired
    const turn = await this.call(() => this.client.set(metaKey(this.options.prefix, 'sweep'), this.sweepToken, 'PX', SWEEP_MS - 100, 'NX'), 'change')
    if (turn === null) return expired
    await Promise.all(
      this.lanes.lanes().map(async (lane) => {
        const laneId = this.lanes.cachedId(lane)!
        for (let rounds = 0; rounds < 10; rounds++) {
          const reply = await this.laneCall(lane, 'reap', [REAP_LIMIT], 'change')
          for (let i = 1; i + 1 < reply.length; i += 2) expired.leases.push(this.job(reply[i + 1] as string, lane, laneId, reply[i] as string))
          if ((reply[0] as number) === 0) break
          expired.lanes.add(lane)
          this.wakeups.work(lane)
          if ((reply[0] as number) < REAP_LIMIT) break
        }
      }),
    )
    return expired
  }

  /** Waits until connected (or `timeoutMs` passed: false). */
  async connected(timeoutMs: number): Promise<boolean> {
    const deadline = Date.now() + timeoutMs
    while (this.connection.state !== 'up' || this.codec === undefined) {
      if (Date.now() > deadline) return false
      await new Promise((resolve) => setTimeout(resolve, 50))
    }
    return true
  }

  /**
   * `dispenserd migrate`: loads an in-memory store's jobs (each lane in serving order, dead jobs
   * with their reports) into a prefix that holds no lane yet. Jobs keep their number, priority,
   * creation time, attempts, delay and hash (an index maps the old hashes); the job number counter
   * is raised to `nextJobNum`. Returns how many jobs and dead jobs were written.
   */
  async importJobs(lanes: readonly LaneSnapshot[], dead: ReadonlyMap<string, Job[]>, nextJobNum: number): Promise<{ jobs: number; dead: number }> {
    const { prefix } = this.options
    await this.lanes.refresh(this.client)
    if (this.lanes.size > 0) throw new Error(`prefix "${prefix}" already holds ${this.lanes.size} lanes; migrate into an empty prefix (--redis-prefix)`)
    const written = { jobs: 0, dead: 0 }
    const write = async (lane: string, jobs: Job[], kind: 'q' | 'dead'): Promise<void> => {
      const laneId = await this.lanes.ensure(this.client, lane)
      for (let i = 0; i < jobs.length; i += 1000) {
        const chunk = jobs.slice(i, i + 1000)
        const args: (string | number)[] = [chunk.length]
        for (const job of chunk) {
          const record = encodeRecord({ jobNum: job.jobNum, created: job.created, priority: job.priority, attempts: job.attempts, hash: job.hash }, job.message)
          args.push(job.priority, record, job.notBefore, kind, job.report === undefined ? '' : JSON.stringify(job.report))
        }
        const first = (await this.laneCall(lane, 'import', args, 'change')) as unknown as number
        const index: string[] = []
        chunk.forEach((job, k) => index.push(job.hash, laneId + (first + k).toString(16).padStart(12, '0')))
        await this.client.hset(metaKey(prefix, 'foreign'), ...index)
        written[kind === 'q' ? 'jobs' : 'dead'] += chunk.length
      }
    }
    for (const { lane, parts } of lanes) await write(lane, parts.flat(), 'q')
    for (const [lane, jobs] of dead) await write(lane, jobs, 'dead')
    await new Script(META_SCRIPTS.jobNumFloor).run(this.client, [metaKey(prefix, 'job_num')], [nextJobNum])
    return written
  }

  whenDurable(callback: (err: Error | undefined) => void): void {
    // A script's reply means Redis has the change (its own persistence and replicas apply).
    callback(undefined)
  }

  writeNow(): void {
    // Each change was sent to Redis as it was made.
  }

  /**
   * Set while Redis cannot serve `lane`: what a receiver whose wait there ends meanwhile is
   * answered. A cluster with one shard down still serves the other shards' lanes: there it is the
   * lane's own last call that tells.
   */
  unavailable(lane?: string): ApiError | undefined {
    const down = this.codec === undefined || this.connection.state !== 'up'
    if (!down) return undefined
    // A lane of a cluster is served while its own master answers, whatever the others do.
    if (lane !== undefined && 'cluster' in this.options.target && this.codec !== undefined && !this.failing.has(lane)) return undefined
    return this.notConnected()
  }

  status(): Record<string, unknown> {
    const { target, prefix } = this.options
    const { state, lastError, since } = this.connection
    return {
      store: {
        type: 'redis',
        mode: 'url' in target ? 'standalone' : 'cluster',
        servers: 'url' in target ? [redactUrl(target.url)] : target.cluster.map(({ host, port }) => `${host}:${port}`),
        prefix,
        state,
        error: lastError ?? null,
        since: new Date(since).toISOString(),
        frontend: this.frontend,
        counts_age_ms: this.tally.ageMs(),
      },
      // Redis's own persistence keeps the jobs: no queue.json, no journal.
      snapshot: { enabled: false },
      journal: { enabled: false },
    }
  }
}

/** Fair groups keep their turns in one process: over Redis a schedule with "group" is refused (code 15). */
function refuseGroups(inputs: readonly ScheduleInput[]): void {
  if (inputs.some((input) => input.group !== undefined)) throw notOffered('"group" (fair groups within a lane)', 'redis')
}

/** The inputs' indexes by lane, in order: one script per lane. */
function indexesByLane(inputs: readonly ScheduleInput[]): Map<string, number[]> {
  const byLane = new Map<string, number[]>()
  inputs.forEach((input, i) => {
    const indexes = byLane.get(input.lane)
    if (indexes === undefined) byLane.set(input.lane, [i])
    else indexes.push(i)
  })
  return byLane
}

/** Each caller of a coalesced call that failed gets an error of its own (the same code and message). */
function ownError(err: unknown): unknown {
  return err instanceof ApiError ? new ApiError(err.codeName, err.message) : err
}

function notLeased(hash: string): ApiError {
  return new ApiError('not_leased', `no leased job has hash ${JSON.stringify(hash)} (never leased, already acked or released, or its lease expired)`)
}

/** The URL without its password, for GET / and logs. */
export function redactUrl(url: string): string {
  try {
    const parsed = new URL(url)
    if (parsed.password !== '') parsed.password = '***'
    return parsed.toString()
  } catch {
    return 'redis://…'
  }
}

/** One ack's arguments to the ack script: member, token, result ('' for none), keep ms, succeeded jobs kept at most. */
type AckArgs = [string, string, string, number, number]

/** What an ack weighs in a coalesced call: one, and one more per KiB of its result (a call's size stays bounded). */
function ackSize(args: AckArgs): number {
  return 1 + Math.floor(args[2].length / 1024)
}

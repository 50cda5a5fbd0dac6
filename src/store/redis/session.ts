/**
 * One frontend's session with Redis, shared by every part of the store: the clients, what is read
 * once connected (the hash secret, lane ids, job numbers, counts), the one way every call is made
 * (counted for close(), its failure turned into the reply it owes: connection.ts), and the jobs
 * made from what the scripts answer. The parts (scheduling.ts, receiving.ts, leases.ts, reads.ts,
 * operators.ts, sweep.ts) each hold one kind of operation and make their calls through it.
 */
import { randomBytes } from 'node:crypto'
import type { Cluster, Redis } from 'ioredis'
import { ApiError } from '../../errors'
import type { Logger } from '../../log'
import type { HistoryLimits } from '../../queue/history'
import type { Job, RunReport } from '../../queue/job'
import { type Client, ConnectionState, type Outcome, type RedisTarget, Script, connect, storeError } from './connection'
import { CountsCache } from './counts'
import type { HashCodec } from './hash-codec'
import { JobNumbers } from './job-numbers'
import { metaKey } from './keys'
import { LaneDirectory } from './lane-directory'
import { decodeRecord } from './records'
import { LANE_SCRIPTS, type LaneScript } from './scripts'
import { CallsUnderWay } from './under-way'

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

/** A script's reply: a flat array (Lua tables cannot hold nil). */
export type Reply = (string | number | null)[]

/** A lane and a job's member in it, as a hash names them. */
export interface Place {
  lane: string
  laneId: string
  member: string
}

export class RedisSession {
  readonly client: Client
  readonly subscriber: Redis | Cluster
  readonly connection: ConnectionState
  readonly lanes: LaneDirectory
  readonly numbers: JobNumbers
  readonly tally: CountsCache
  /** Read once connected (the hash secret is in Redis); undefined while not. */
  codec: HashCodec | undefined
  /** This process among the frontends: names its wake-up channels and its place among the waiting. */
  readonly frontend = randomBytes(6).toString('hex')
  /** Each job this store made, by its member in its lane (for put-backs and run ends). */
  readonly members = new WeakMap<Job, string>()
  /** Calls to Redis under way: close() waits for them. */
  readonly underWay = new CallsUnderWay()
  private readonly scripts: Record<LaneScript, Script>
  /** Lanes whose last script failed for want of Redis (on a cluster, one shard can be down alone). */
  private readonly failing = new Set<string>()

  constructor(
    readonly options: RedisStoreOptions,
    onReady: () => void,
  ) {
    const { logger, prefix } = options
    this.client = connect(options.target, options.commandTimeoutMs)
    this.subscriber = 'url' in options.target ? (this.client as Redis).duplicate() : this.client
    this.scripts = Object.fromEntries(Object.entries(LANE_SCRIPTS).map(([name, lua]) => [name, new Script(lua)])) as Record<LaneScript, Script>
    this.lanes = new LaneDirectory(prefix)
    this.numbers = new JobNumbers(metaKey(prefix, 'job_num'))
    this.tally = new CountsCache(this.scripts.counts)
    this.connection = new ConnectionState(this.client, logger, onReady)
    if (this.subscriber !== this.client) this.subscriber.on('error', () => undefined)
  }

  /** Whether `lane` is a runner lane (its leases are runs). */
  isRunnerLane(lane: string): boolean {
    return this.options.runnerLanes?.has(lane) === true
  }

  /** The codec, once connected; before that every call answers 503 (nothing was changed). */
  hashes(): HashCodec {
    if (this.codec === undefined) throw this.notConnected()
    return this.codec
  }

  notConnected(): ApiError {
    return new ApiError('store_unavailable', `the job store (Redis) is not connected${this.connection.lastError === undefined ? ' yet' : ` (${this.connection.lastError})`}; nothing was changed`)
  }

  async laneCall(lane: string, name: LaneScript, args: (string | number)[], outcome: Outcome): Promise<Reply> {
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

  async call<T>(f: () => Promise<T>, outcome: Outcome): Promise<T> {
    try {
      return await this.underWay.run(f)
    } catch (err) {
      throw storeError(err, outcome)
    }
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

  /** The lane and member a hash names (ours, or an imported job's), or undefined. */
  async locate(hash: string): Promise<Place | undefined> {
    let found = this.hashes().decode(hash)
    if (found === undefined) {
      const foreign = await this.call(() => this.client.hget(metaKey(this.options.prefix, 'foreign'), hash), 'read')
      if (foreign === null) return undefined
      found = { laneId: foreign.slice(0, 8), member: foreign.slice(8) }
    }
    const lane = await this.call(() => this.lanes.nameOf(this.client, found.laneId), 'read')
    return lane === undefined ? undefined : { lane, ...found }
  }

  /**
   * A job from a record of `lane` with id `laneId`, remembering its member. `hash`: the job's hash
   * when the caller named the job by it (no need to compute it again).
   */
  job(record: string, lane: string, laneId: string, member: string, hash?: string): Job {
    const job = decodeRecord(record, lane, () => hash ?? this.hashes().encode(laneId, member))
    this.members.set(job, member)
    return job
  }

  /** The jobs of a reply's (member, record) pairs, from index `from` to its end. */
  jobs(reply: Reply, from: number, lane: string, laneId: string): Job[] {
    const jobs: Job[] = []
    for (let i = from; i + 1 < reply.length; i += 2) jobs.push(this.job(reply[i + 1] as string, lane, laneId, reply[i] as string))
    return jobs
  }

  /** The jobs of a reply's (member, record, report or null) triples, from index `from` to its end. */
  jobsWithReports(reply: Reply, from: number, lane: string, laneId: string): Job[] {
    const jobs: Job[] = []
    for (let i = from; i + 2 < reply.length; i += 3) {
      const job = this.job(reply[i + 1] as string, lane, laneId, reply[i] as string)
      if (reply[i + 2] !== null) job.report = JSON.parse(reply[i + 2] as string) as RunReport
      jobs.push(job)
    }
    return jobs
  }

  memberOf(job: Job): string {
    const member = this.members.get(job)
    if (member === undefined) throw new Error(`job ${job.jobNum} was not made by this store`)
    return member
  }
}

import type { ApiError } from '../../errors'
import type { Held } from '../../queue/held'
import type { Job, RunReport } from '../../queue/job'
import type { FoundJob, LaneSnapshot, ScheduleInput } from '../../queue/queue'
import type { JobPage, PageQuery } from '../../queue/pages'
import type { BackgroundTasks } from '../../service/tasks'
import type { CronRecord } from '../../queue/cron-table'
import type { UniqueHold } from '../../queue/unique'
import { type Expired, type JobStore, type LaneCounts, type StoreStats, type Taken, type Usage, noSuchLane, notOffered } from '../job-store'
import { Leases } from './leases'
import { Lifecycle } from './lifecycle'
import { importJobs } from './migration'
import { Operators } from './operators'
import { Reads } from './reads'
import { Receiving } from './receiving'
import { Scheduling } from './scheduling'
import { RedisSession, type RedisStoreOptions } from './session'
import { SWEEP_MS, Sweep } from './sweep'
import { Wakeups } from './wakeups'

export type { RedisStoreOptions } from './session'

/**
 * Jobs kept in Redis (one server, or a cluster): any number of stateless dispenserd processes
 * ("frontends") serve the same lanes. Every lane operation is one atomic Lua script on the lane's
 * hash slot (lua/, by name in scripts.ts); deadlines use the Redis server's clock; hints between
 * frontends use sharded pub/sub (wakeups.ts). What GET / and the limits read (counts, usage,
 * lanes) is cached (counts.ts, lane-directory.ts) and refreshed every second. Every call answers
 * with a promise; a Redis that is down or slow answers 503 code 14 (connection.ts), and the store
 * reconnects by itself.
 *
 * This file wires the parts: each holds one kind of operation and makes its calls through the
 * session (session.ts); lifecycle.ts connects, reads what a connection needs, refreshes the counts
 * and closes.
 */
export class RedisStore implements JobStore {
  readonly defersReplies = true
  readonly answersAtOnce = false
  readonly kind = 'redis'
  readonly broken = undefined
  private readonly session: RedisSession
  private readonly wakeups: Wakeups
  private readonly scheduling: Scheduling
  private readonly receiving: Receiving
  private readonly leases: Leases
  private readonly operators: Operators
  private readonly reads: Reads
  private readonly sweep: Sweep
  private readonly lifecycle: Lifecycle
  /** Lanes declared here: each (re)connection makes sure they exist. */
  private readonly declared = new Set<string>()
  /** Paused lanes as of the last count read, and this frontend's own pauses and resumes since. */
  private paused = new Set<string>()
  /**
   * Cron entries' records, kept by this frontend only: each frontend runs the config file's
   * entries, and a slot's unique key (held in Redis) lets only one of them queue the slot's job.
   */
  private readonly cron = new Map<string, CronRecord>()

  constructor(options: RedisStoreOptions) {
    this.session = new RedisSession(options, () => this.lifecycle.whenReady())
    this.wakeups = new Wakeups(this.session.subscriber, options.logger, (lane) => void this.session.laneCall(lane, 'pass', [], 'change').catch(() => undefined))
    this.scheduling = new Scheduling(this.session, this.wakeups)
    this.receiving = new Receiving(this.session, this.wakeups)
    this.leases = new Leases(this.session, this.wakeups)
    this.operators = new Operators(this.session, this.wakeups)
    this.reads = new Reads(this.session)
    this.sweep = new Sweep(this.session, this.wakeups, this.receiving)
    const coalescers = [this.scheduling.coalescer, this.receiving.coalescer, this.leases.coalescer]
    this.lifecycle = new Lifecycle(this.session, this.wakeups, coalescers, this.declared, (paused) => (this.paused = new Set(paused)))
  }

  /** Connects in the background (the daemon serves GET / while Redis is down) and starts the chores. */
  start(tasks: BackgroundTasks): void {
    this.lifecycle.start(tasks)
  }

  close(): Promise<void> {
    return this.lifecycle.close()
  }

  /** Waits until connected (or `timeoutMs` passed: false). */
  connected(timeoutMs: number): Promise<boolean> {
    return this.lifecycle.connected(timeoutMs)
  }

  get nextJobNum(): number {
    return this.session.numbers.next
  }

  hasLane(lane: string): boolean {
    return this.session.lanes.has(lane)
  }

  hasReady(lane: string): boolean {
    return this.wakeups.mayHaveWork(lane)
  }

  declareLane(lane: string): void {
    this.declared.add(lane)
    if (this.session.codec !== undefined) void this.session.lanes.ensure(this.session.client, lane).catch(() => undefined)
  }

  usage(): Usage {
    return this.session.tally.usage(this.session.lanes.size)
  }

  onWork(listener: (lane: string) => boolean): void {
    this.wakeups.onWork(listener)
  }

  schedule(inputs: readonly ScheduleInput[]): Promise<Job[]> {
    return this.scheduling.schedule(inputs)
  }

  scheduleUnique(inputs: readonly ScheduleInput[]): Promise<(Job | UniqueHold)[]> {
    return this.scheduling.scheduleUnique(inputs)
  }

  waitedEnd(hash: string): Promise<{ job: Job; state: 'succeeded' | 'dead' | 'taken' | 'deleted' } | undefined> {
    return this.scheduling.waitedEnd(hash)
  }

  unwatch(hash: string): void {
    this.scheduling.unwatch(hash)
  }

  take(lane: string, leaseMs: number | undefined, waiting?: number): Promise<Taken | undefined> {
    return this.receiving.take(lane, leaseMs, waiting)
  }

  takeMany(lane: string, leaseMs: number | undefined, count: number, min = 1, waiting?: number): Promise<Taken[]> {
    return this.receiving.takeMany(lane, leaseMs, count, min, waiting)
  }

  readyCount(lane: string): number {
    return this.session.tally.byLane([lane]).queued[lane] ?? 0
  }

  returnUndelivered(taken: Taken): Promise<boolean> {
    return this.receiving.returnUndelivered(taken)
  }

  ack(hash: string, token: string, result?: string): Promise<Job> {
    return this.leases.ack(hash, token, result)
  }

  release(hash: string, token: string, delayMs: number): Promise<Job> {
    return this.leases.release(hash, token, delayMs)
  }

  touch(hash: string, token: string, leaseMs: number | undefined): Promise<Held> {
    return this.leases.touch(hash, token, leaseMs)
  }

  complete(lease: Held, report: RunReport, result?: string): Promise<Job> {
    return this.leases.complete(lease, report, result)
  }

  bury(lease: Held, report: RunReport): Promise<Job> {
    return this.leases.bury(lease, report)
  }

  retryLater(lease: Held, delayMs: number): Promise<Job> {
    return this.leases.retryLater(lease, delayMs)
  }

  retryDead(hash: string): Promise<Job> {
    return this.operators.retryDead(hash)
  }

  delete(hash: string): Promise<Job> {
    return this.operators.delete(hash)
  }

  relocate(hash: string, lane: string, priority: number): Promise<Job> {
    return this.operators.relocate(hash, lane, priority)
  }

  /** POST /pause and /resume: the flag is the lane's, in Redis; every frontend's takes honour it. */
  async setPaused(lane: string, paused: boolean): Promise<void> {
    this.session.hashes()
    // Read from Redis when not known here yet: another frontend may have made the lane a moment ago.
    if ((await this.session.call(() => this.session.lanes.idOf(this.session.client, lane), 'read')) === undefined) throw noSuchLane(lane)
    await this.session.laneCall(lane, 'pause', [paused ? '1' : '0'], 'change')
    if (paused) this.paused.add(lane)
    else {
      this.paused.delete(lane)
      this.wakeups.work(lane)
    }
  }

  pausedLanes(): ReadonlySet<string> {
    return this.paused
  }

  find(hash: string): Promise<FoundJob | undefined> {
    return this.reads.find(hash)
  }

  findByNumber(jobNum: number): Promise<FoundJob | undefined> {
    return this.reads.findByNumber(jobNum)
  }

  page(query: PageQuery): Promise<JobPage> {
    return this.reads.page(query)
  }

  deadJobs(lane: string, offset: number, limit: number): Promise<{ total: number; jobs: Job[] }> {
    return this.reads.deadJobs(lane, offset, limit)
  }

  readyJobs(): Promise<LaneSnapshot[]> {
    return this.reads.readyJobs()
  }

  stats(): StoreStats {
    return { kind: 'redis', reachable: this.unavailable() === undefined }
  }

  counts(): LaneCounts {
    return this.session.tally.byLane(this.session.lanes.lanes())
  }

  laneNames(): string[] {
    return this.session.lanes.lanes()
  }

  leasedJobs(): number {
    return this.session.tally.leased
  }

  finishedForgotten(): number {
    return this.session.tally.forgotten
  }

  uniqueKeysHeld(): number {
    return this.session.tally.uniqueHeld
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

  expireDue(): Promise<Expired> {
    return this.sweep.expireDue()
  }

  importJobs(lanes: readonly LaneSnapshot[], dead: ReadonlyMap<string, Job[]>, nextJobNum: number): Promise<{ jobs: number; dead: number }> {
    return importJobs(this.session, lanes, dead, nextJobNum)
  }

  whenDurable(callback: (err: Error | undefined) => void): void {
    // A script's reply means Redis has the change (its own persistence and replicas apply).
    callback(undefined)
  }

  writeNow(): void {
    // Each change was sent to Redis as it was made.
  }

  unavailable(lane?: string): ApiError | undefined {
    return this.session.unavailable(lane)
  }

  status(): Record<string, unknown> {
    const { target, prefix } = this.session.options
    const { state, lastError, since } = this.session.connection
    return {
      store: {
        type: 'redis',
        mode: 'url' in target ? 'standalone' : 'cluster',
        servers: 'url' in target ? [redactUrl(target.url)] : target.cluster.map(({ host, port }) => `${host}:${port}`),
        prefix,
        state,
        error: lastError ?? null,
        since: new Date(since).toISOString(),
        frontend: this.session.frontend,
        counts_age_ms: this.session.tally.ageMs(),
      },
      // Redis's own persistence keeps the jobs: no queue.json, no journal.
      snapshot: { enabled: false },
      journal: { enabled: false },
    }
  }
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

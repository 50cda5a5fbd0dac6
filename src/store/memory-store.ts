import type { FSYNC_MODES } from '../config'
import type { Logger } from '../log'
import { Journal } from '../persist/journal'
import { readJournal } from '../persist/replay'
import { SnapshotStore } from '../persist/store'
import type { Held } from '../queue/held'
import type { HistoryLimits } from '../queue/history'
import type { Job, RunReport } from '../queue/job'
import type { CronRecord } from '../queue/cron-table'
import type { JobPage, PageQuery } from '../queue/pages'
import { type FoundJob, type LaneSnapshot, Queue, type ScheduleInput } from '../queue/queue'
import type { UniqueHold } from '../queue/unique'
import type { BackgroundTasks, Task } from '../service/tasks'
import type { Expired, JobStore, LaneCounts, StoreStats, Taken, Usage } from './job-store'

export interface MemoryStoreOptions {
  logger: Logger
  /** Milliseconds since the epoch; injected so tests control time. */
  clock?: () => number
  history?: HistoryLimits
  /** Stores this hash in each new job instead of deriving one (for readable tests). */
  makeHash?: (jobNum: number) => string
  /** Lanes served by runners: their jobs are found by hash in every state (declared before loading). */
  runnerLanes?: readonly string[]
  /** Where queue.json lives; none: nothing is loaded or saved. */
  persistence?: {
    dataDir: string
    /** Also journal every change (`persistence: "journal"`). */
    journal?: { fsync: (typeof FSYNC_MODES)[number]; fsyncMs: number; maxBytes: number }
  }
}

/** How long a broken journal waits between snapshots that would make it whole again. */
const REPAIR_EVERY_MS = 5000

/**
 * The in-memory store: the jobs in lanes, heaps and maps (Queue), and, private to it, what keeps
 * them across restarts: snapshots of queue.json and the journal. Every call answers at once.
 */
export class MemoryStore implements JobStore {
  readonly answersAtOnce = true
  readonly kind = 'memory'
  private readonly queue: Queue
  private readonly snapshots: SnapshotStore | undefined
  private readonly journal: Journal | undefined
  private compaction: Task | undefined
  private repair: Task | undefined
  private deadlineListener: ((at: number) => void) | undefined
  private readonly replayedGenerations: number

  /**
   * Opens the store: replays the journal and loads the snapshot when persistence is on. Throws when
   * either cannot be read (the files are left as they are).
   */
  constructor(private readonly options: MemoryStoreOptions) {
    const { persistence, logger } = options
    const replay = persistence?.journal === undefined ? undefined : readJournal(persistence.dataDir, logger)
    this.snapshots = persistence === undefined ? undefined : new SnapshotStore(persistence.dataDir, logger)
    if (persistence?.journal !== undefined && replay !== undefined) {
      const onDisk = replay.generations
      this.journal = new Journal({
        dir: persistence.dataDir,
        fsync: persistence.journal.fsync,
        fsyncMs: persistence.journal.fsyncMs,
        maxBytes: persistence.journal.maxBytes,
        generation: (onDisk[onDisk.length - 1] ?? 0) + 1,
        onFull: () => this.compaction?.trigger(),
        onFailure: () => this.repair?.trigger(),
        logger,
      })
    }
    this.queue = new Queue({ clock: options.clock, changes: this.journal, history: options.history, makeHash: options.makeHash, onDeadline: (at) => this.deadlineListener?.(at) })
    for (const lane of options.runnerLanes ?? []) this.queue.indexLane(lane)
    if (this.snapshots !== undefined) {
      const started = performance.now()
      const restored = this.snapshots.load(this.queue, replay?.state)
      const duration = Math.round(performance.now() - started)
      logger.info({ file: this.snapshots.queueFile, jobs: restored, next_job_num: this.queue.nextJobNum, duration_ms: duration, journal_records: replay?.state.records }, 'queue loaded')
    }
    this.replayedGenerations = replay?.generations.length ?? 0
  }

  /**
   * Registers the store's chores: snapshots every `persistIntervalMs` (0: only at shutdown), the
   * compaction a full journal asks for (and one right after a replay), and the repair of a broken
   * journal (snapshots every 5 s until one succeeds).
   */
  start(tasks: BackgroundTasks, persistIntervalMs: number): void {
    const snapshots = this.snapshots
    if (snapshots === undefined) return
    const save = (reason: string) => (): Promise<void> => snapshots.save(this.queue, reason, this.journal)
    const interval = tasks.add('snapshot', save('interval'))
    if (persistIntervalMs > 0) interval.every(persistIntervalMs)
    if (this.journal === undefined) return
    const journal = this.journal
    this.compaction = tasks.add('journal compaction', save('journal full'))
    this.repair = tasks.add('journal repair', async () => {
      await snapshots.save(this.queue, 'journal failed', journal).catch(() => undefined)
      await new Promise((resolve) => journal.whenDurable(resolve))
      if (journal.broken !== undefined) setTimeout(() => this.repair!.trigger(), REPAIR_EVERY_MS).unref()
    })
    if (this.replayedGenerations > 0) this.compaction.trigger()
  }

  /**
   * At shutdown: waits for what the journal still writes, takes the final snapshot and closes the
   * journal. Rejects when the snapshot could not be written.
   */
  async close(): Promise<void> {
    if (this.journal !== undefined) await new Promise((resolve) => this.journal!.whenDurable(resolve))
    try {
      if (this.snapshots !== undefined) await this.snapshots.save(this.queue, 'shutdown', this.journal)
    } finally {
      await this.journal?.close()
    }
  }

  get nextJobNum(): number {
    return this.queue.nextJobNum
  }

  get broken(): Error | undefined {
    return this.journal?.broken
  }

  get defersReplies(): boolean {
    return this.journal !== undefined
  }

  hasLane(lane: string): boolean {
    return this.queue.hasLane(lane)
  }

  hasReady(lane: string): boolean {
    return this.queue.hasReady(lane)
  }

  setGroupWeights(lane: string, weights: Readonly<Record<string, number>> | undefined): void {
    this.queue.setGroupWeights(lane, weights)
  }

  declareLane(lane: string, runner: boolean): void {
    if (runner) this.queue.indexLane(lane)
    else this.queue.declareLane(lane)
  }

  usage(): Usage {
    return { jobs: this.queue.totalQueued, bytes: this.queue.queuedBytes, lanes: this.queue.laneCount, dead: this.queue.deadCount }
  }

  schedule(inputs: readonly ScheduleInput[]): Job[] {
    return this.queue.scheduleMany(inputs)
  }

  scheduleUnique(inputs: readonly ScheduleInput[]): (Job | UniqueHold)[] {
    return this.queue.scheduleUnique(inputs)
  }

  take(lane: string, leaseMs: number | undefined): Taken | undefined {
    if (leaseMs === undefined) {
      const job = this.queue.receive(lane)
      return job === undefined ? undefined : { job, lease: undefined }
    }
    const lease = this.queue.receiveLeased(lane, leaseMs)
    return lease === undefined ? undefined : { job: lease.job, lease }
  }

  takeMany(lane: string, leaseMs: number | undefined, count: number): Taken[] {
    if (leaseMs !== undefined) return this.queue.receiveLeasedMany(lane, leaseMs, count).map((lease) => ({ job: lease.job, lease }))
    const taken: Taken[] = []
    for (let t = this.take(lane, leaseMs); t !== undefined; t = taken.length < count ? this.take(lane, leaseMs) : undefined) taken.push(t)
    return taken
  }

  readyCount(lane: string): number {
    return this.queue.readyCount(lane)
  }

  returnUndelivered({ job, lease }: Taken): boolean {
    return this.queue.returnUndelivered(job, lease)
  }

  ack(hash: string, token: string, result?: string): Job {
    return this.queue.ack(hash, token, result)
  }

  release(hash: string, token: string, delayMs: number): Job {
    return this.queue.release(hash, token, delayMs)
  }

  touch(hash: string, token: string, leaseMs: number | undefined): Held {
    return this.queue.touch(hash, token, leaseMs)
  }

  complete(lease: Held, report: RunReport, result?: string): Job {
    return this.queue.complete(lease, report, result)
  }

  bury(lease: Held, report: RunReport): Job {
    return this.queue.bury(lease, report)
  }

  retryLater(lease: Held, delayMs: number): Job {
    return this.queue.retryLater(lease, delayMs)
  }

  retryDead(hash: string): Job {
    return this.queue.retryDead(hash)
  }

  delete(hash: string): Job {
    return this.queue.deleteJob(hash)
  }

  find(hash: string): FoundJob | undefined {
    return this.queue.findJob(hash)
  }

  findByNumber(jobNum: number): FoundJob | undefined {
    return this.queue.findByNumber(jobNum)
  }

  page(query: PageQuery): JobPage {
    return this.queue.page(query)
  }

  relocate(hash: string, lane: string, priority: number): Job {
    return this.queue.relocate(hash, lane, priority)
  }

  setPaused(lane: string, paused: boolean): void {
    this.queue.setPaused(lane, paused)
  }

  pausedLanes(): ReadonlySet<string> {
    return this.queue.pausedSet
  }

  deadJobs(lane: string, offset: number, limit: number): { total: number; jobs: Job[] } {
    return this.queue.deadJobs(lane, offset, limit)
  }

  readyJobs(): LaneSnapshot[] {
    return this.queue.readyJobs()
  }

  counts(): LaneCounts {
    return this.queue.stats()
  }

  laneNames(): string[] {
    return this.queue.laneNames()
  }

  leasedJobs(): number {
    return this.queue.leasedJobs
  }

  uniqueKeysHeld(): number {
    return this.queue.uniqueKeysHeld
  }

  finishedForgotten(): number {
    return this.queue.finishedForgotten
  }

  cronRecords(): CronRecord[] {
    return this.queue.cron.all()
  }

  saveCron(record: CronRecord): void {
    this.queue.cron.save(record)
  }

  deleteCron(name: string): void {
    this.queue.cron.delete(name)
  }

  nextDeadline(): number | undefined {
    return this.queue.nextDeadline()
  }

  onDeadline(listener: (at: number) => void): void {
    this.deadlineListener = listener
  }

  expireDue(now: number): Expired {
    return this.queue.expireDue(now)
  }

  whenDurable(callback: (err: Error | undefined) => void): void {
    if (this.journal === undefined) callback(undefined)
    else this.journal.whenDurable(callback)
  }

  writeNow(): void {
    this.journal?.writeNow()
  }

  status(): Record<string, unknown> {
    const { snapshots, journal, options } = this
    return {
      store: { type: 'memory' },
      snapshot: snapshots === undefined ? { enabled: false } : { enabled: true, file: snapshots.queueFile, ...snapshots.status },
      journal:
        journal === undefined
          ? { enabled: false }
          : { enabled: true, fsync: options.persistence!.journal!.fsync, generation: journal.generation, error: journal.broken?.message ?? null },
    }
  }

  stats(): StoreStats {
    const { snapshots, journal } = this
    const stats: StoreStats = { kind: 'memory' }
    if (snapshots !== undefined) {
      const s = snapshots.status
      stats.snapshot = {
        lastSavedAt: s.last_saved_at === null ? null : Date.parse(s.last_saved_at),
        lastDurationMs: s.last_duration_ms,
        lastJobs: s.last_jobs,
        lastBytes: s.last_bytes,
        errors: s.errors,
      }
    }
    if (journal !== undefined) stats.journal = { ...journal.stats(), generation: journal.generation, broken: journal.broken !== undefined }
    return stats
  }
}

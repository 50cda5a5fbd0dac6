import { ApiError } from '../errors'
import { DEFAULT_LANE, Job } from './job'
import { Lane, type Receiver } from './lane'
import type { QueueTotals } from './ready'

export interface ScheduleInput {
  message: string
  lane: string
  priority: number
}

/** A job as read back from a snapshot. A missing hash or time is made up on restore. */
export interface RestoredJob extends ScheduleInput {
  jobNum: number
  hash?: string
  created?: number
}

/** Limits that keep a client from growing memory without bound; 0 means unlimited. */
export interface QueueLimits {
  maxQueuedJobs: number
  /** Total UTF-8 bytes of the messages of queued jobs. */
  maxQueuedBytes: number
  maxMessageBytes: number
  maxLanes: number
  maxParkedReceivers: number
}

export const NO_LIMITS: QueueLimits = { maxQueuedJobs: 0, maxQueuedBytes: 0, maxMessageBytes: 0, maxLanes: 0, maxParkedReceivers: 0 }

export interface QueueOptions {
  limits?: QueueLimits
  /** Whole seconds since the epoch; injected so tests control time. */
  now?: () => number
  /** Stores this hash in each new job instead of deriving one (for readable tests). */
  makeHash?: (jobNum: number) => string
}

/** One lane as of a moment: its jobs in serving order, in consecutive parts (one per priority). */
export interface LaneSnapshot {
  lane: string
  count: number
  parts: Job[][]
}

export interface LaneStats {
  queued: Record<string, number>
  idle: Record<string, number>
}

/**
 * The job queue: lanes of ready jobs and parked receivers. Pure logic: no sockets, no files, no
 * timers. Every mutation ends in the lane's `drain()`, which hands ready jobs to parked receivers.
 */
export class Queue {
  private readonly lanes = new Map<string, Lane>()
  private readonly totals: QueueTotals = { jobs: 0, bytes: 0 }
  private parkedCount = 0
  private readonly limits: QueueLimits
  private nextNum = 1
  private readonly now: () => number
  private readonly makeHash: ((jobNum: number) => string) | undefined

  constructor(options: QueueOptions = {}) {
    this.now = options.now ?? (() => Math.floor(Date.now() / 1000))
    this.makeHash = options.makeHash
    this.limits = options.limits ?? NO_LIMITS
    this.declareLane(DEFAULT_LANE)
  }

  /** The job number the next scheduled job will get. */
  get nextJobNum(): number {
    return this.nextNum
  }

  /** Never hand out a job number below `floor` (used at start so numbers grow across restarts). */
  reserveJobNumsBelow(floor: number): void {
    if (floor > this.nextNum) this.nextNum = floor
  }

  /** Queues a job; throws ApiError (nothing queued) when it breaks a limit. */
  schedule(input: ScheduleInput): Job {
    const sizes = this.admit([input], false)
    return this.add(input, sizes[0]!)
  }

  /** Queues every input in order (consecutive job numbers), or none if any breaks a limit. */
  scheduleMany(inputs: readonly ScheduleInput[]): Job[] {
    const sizes = this.admit(inputs, true)
    return inputs.map((input, i) => this.add(input, sizes[i]!))
  }

  /**
   * Checks a schedule of `inputs` against the limits before anything is queued; returns each
   * message's size in UTF-8 bytes, so it is measured once.
   */
  private admit(inputs: readonly ScheduleInput[], batch: boolean): number[] {
    const { maxQueuedJobs, maxQueuedBytes, maxMessageBytes } = this.limits
    const sizes: number[] = []
    let bytes = 0
    let newLanes: Set<string> | undefined // rare: allocated only when a request names a new lane
    for (let i = 0; i < inputs.length; i++) {
      const input = inputs[i]!
      const size = Buffer.byteLength(input.message)
      if (maxMessageBytes > 0 && size > maxMessageBytes) {
        throw new ApiError('invalid_data', `${batch ? `jobs[${i}]: ` : ''}"message" is ${size} bytes, over max_message_bytes (${maxMessageBytes})`)
      }
      bytes += size
      sizes.push(size)
      if (!this.lanes.has(input.lane)) (newLanes ??= new Set()).add(input.lane)
    }
    if (maxQueuedJobs > 0 && this.totals.jobs + inputs.length > maxQueuedJobs) {
      throw new ApiError('limit_reached', `the queue holds ${this.totals.jobs} jobs; max_queued_jobs is ${maxQueuedJobs}`)
    }
    if (maxQueuedBytes > 0 && this.totals.bytes + bytes > maxQueuedBytes) {
      throw new ApiError('limit_reached', `queued messages take ${this.totals.bytes} bytes; max_queued_bytes is ${maxQueuedBytes}`)
    }
    if (newLanes !== undefined) this.checkNewLanes(newLanes.size)
    return sizes
  }

  private checkNewLanes(count: number): void {
    const { maxLanes } = this.limits
    if (count > 0 && maxLanes > 0 && this.lanes.size + count > maxLanes) {
      throw new ApiError('limit_reached', `there are ${this.lanes.size} lanes; max_lanes is ${maxLanes}`)
    }
  }

  private add(input: ScheduleInput, bytes: number): Job {
    const lane = this.lane(input.lane)
    const jobNum = this.nextNum++
    const job = new Job(jobNum, this.now(), lane.name, input.priority, input.message, this.makeHash?.(jobNum) ?? null)
    lane.ready.push(job, bytes)
    this.drain(lane)
    return job
  }

  /** Puts back a job loaded from a snapshot, keeping its number, hash and time. */
  restore(input: RestoredJob): Job {
    // What was accepted before a restart is loaded whatever the limits are now.
    this.declareLane(input.lane)
    const lane = this.lanes.get(input.lane)!
    const job = new Job(input.jobNum, input.created ?? this.now(), lane.name, input.priority, input.message, input.hash ?? null)
    this.reserveJobNumsBelow(job.jobNum + 1)
    this.enqueue(job)
    return job
  }

  /** Makes a lane known (listed by `/jobs` and status) even while it has no jobs. No limit applies. */
  declareLane(name: string): void {
    if (!this.lanes.has(name)) this.lanes.set(name, new Lane(name, this.totals))
  }

  /** Puts back a job that was taken but could not be handed over; it keeps its place. */
  requeue(job: Job): void {
    this.enqueue(job)
  }

  /** Takes the next job of a lane, or undefined when it has none ready. */
  receive(laneName: string): Job | undefined {
    return this.lane(laneName).ready.pop()
  }

  /**
   * Waits for the next job of a lane: delivers at once if one is ready, otherwise parks the
   * receiver behind any that are already waiting (throws ApiError past max_parked_receivers).
   */
  awaitJob(laneName: string, receiver: Receiver): void {
    const lane = this.lane(laneName)
    const { maxParkedReceivers } = this.limits
    if (lane.ready.size === 0 && maxParkedReceivers > 0 && this.parkedCount >= maxParkedReceivers) {
      throw new ApiError('limit_reached', `${this.parkedCount} receivers are waiting; max_parked_receivers is ${maxParkedReceivers}`)
    }
    lane.parked.add(receiver)
    this.parkedCount++
    this.drain(lane)
  }

  /** Removes a parked receiver (its client went away). Returns whether it was parked. */
  cancel(laneName: string, receiver: Receiver): boolean {
    const removed = this.lanes.get(laneName)?.parked.delete(receiver) ?? false
    if (removed) this.parkedCount--
    return removed
  }

  /** Removes every parked receiver and dismisses it; for shutdown. */
  dismissAllParked(): void {
    for (const lane of this.lanes.values()) {
      const parked = [...lane.parked]
      lane.parked.clear()
      this.parkedCount -= parked.length
      for (const receiver of parked) receiver.dismiss()
    }
  }

  get parkedReceivers(): number {
    return this.parkedCount
  }

  get queuedBytes(): number {
    return this.totals.bytes
  }

  /** Queued and parked counts for every known lane. */
  stats(): LaneStats {
    const queued: Record<string, number> = {}
    const idle: Record<string, number> = {}
    for (const [name, lane] of this.lanes) {
      queued[name] = lane.ready.size
      idle[name] = lane.parked.size
    }
    return { queued, idle }
  }

  get totalQueued(): number {
    return this.totals.jobs
  }

  laneNames(): string[] {
    return [...this.lanes.keys()]
  }

  /** A lane's ready jobs in the order they will be served (a sorted copy; the heap is untouched). */
  jobsInOrder(laneName: string): Job[] {
    const lane = this.lanes.get(laneName)
    return lane === undefined ? [] : lane.ready.inOrder()
  }

  /**
   * Every lane with its ready jobs in serving order, as of now: O(n) pointer copying (about 5 ms
   * for a million jobs), so a snapshot can then be written piecemeal while the queue keeps serving.
   */
  snapshot(): LaneSnapshot[] {
    return [...this.lanes].map(([name, lane]) => ({ lane: name, count: lane.ready.size, parts: lane.ready.inOrderParts() }))
  }

  /** The named lane, created on first use (throws ApiError past max_lanes). */
  private lane(name: string): Lane {
    let lane = this.lanes.get(name)
    if (lane === undefined) {
      this.checkNewLanes(1)
      lane = new Lane(name, this.totals)
      this.lanes.set(name, lane)
    }
    return lane
  }

  private enqueue(job: Job): void {
    const lane = this.lane(job.lane)
    lane.ready.push(job)
    this.drain(lane)
  }

  /** Hands ready jobs to parked receivers, keeping the parked count in step. */
  private drain(lane: Lane): void {
    const parked = lane.parked.size
    if (parked === 0) return
    lane.drain()
    this.parkedCount -= parked - lane.parked.size
  }
}

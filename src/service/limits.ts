import { ApiError } from '../errors'
import type { ScheduleInput } from '../queue/queue'
import type { Usage } from '../store/job-store'

/** Limits that keep a client from growing memory without bound; 0 means unlimited. */
export interface QueueLimits {
  maxQueuedJobs: number
  /** Total UTF-8 bytes of the messages of queued jobs. */
  maxQueuedBytes: number
  maxMessageBytes: number
  maxLanes: number
  maxParkedReceivers: number
  /** The largest result an ack or a run may leave (JSON bytes). */
  maxResultBytes: number
}

export const NO_LIMITS: QueueLimits = { maxQueuedJobs: 0, maxQueuedBytes: 0, maxMessageBytes: 0, maxLanes: 0, maxParkedReceivers: 0, maxResultBytes: 0 }

/** What `admit` asks of the store. */
export interface Kept {
  usage(): Usage
  hasLane(lane: string): boolean
}

/**
 * Checks a schedule of `inputs` against the limits before anything is queued: the whole batch fits
 * or nothing is queued. Throws ApiError naming the limit. Every job the store keeps counts (ready,
 * leased, delayed and dead: its `usage`, read only when a limit is set); `hasLane` tells which lanes
 * would be new.
 */
export function admit(inputs: readonly ScheduleInput[], batch: boolean, limits: QueueLimits, kept: Kept): void {
  const { maxQueuedJobs, maxQueuedBytes, maxMessageBytes, maxLanes } = limits
  let bytes = 0
  let newLanes: Set<string> | undefined // rare: allocated only when a request names a new lane
  for (let i = 0; i < inputs.length; i++) {
    const input = inputs[i]!
    const size = Buffer.byteLength(input.message)
    if (maxMessageBytes > 0 && size > maxMessageBytes) {
      throw new ApiError('invalid_data', `${batch ? `jobs[${i}]: ` : ''}"message" is ${size} bytes, over max_message_bytes (${maxMessageBytes})`)
    }
    bytes += size
    if (!kept.hasLane(input.lane)) (newLanes ??= new Set()).add(input.lane)
  }
  if (maxQueuedJobs <= 0 && maxQueuedBytes <= 0 && (newLanes === undefined || maxLanes <= 0)) return
  const usage = kept.usage()
  const dead = (): string => (usage.dead === 0 ? '' : ` (${usage.dead} of them dead: retry or delete them)`)
  if (maxQueuedJobs > 0 && usage.jobs + inputs.length > maxQueuedJobs) {
    throw new ApiError('limit_reached', `the queue holds ${usage.jobs} jobs${dead()}; max_queued_jobs is ${maxQueuedJobs}`)
  }
  if (maxQueuedBytes > 0 && usage.bytes + bytes > maxQueuedBytes) {
    throw new ApiError('limit_reached', `queued messages take ${usage.bytes} bytes${dead()}; max_queued_bytes is ${maxQueuedBytes}`)
  }
  if (newLanes !== undefined && maxLanes > 0 && usage.lanes + newLanes.size > maxLanes) {
    throw new ApiError('limit_reached', `there are ${usage.lanes} lanes; max_lanes is ${maxLanes}`)
  }
}

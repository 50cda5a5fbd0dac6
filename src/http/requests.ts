import { ApiError } from '../errors'
import { isJsonObject } from '../json'
import { DEFAULT_LANE, DEFAULT_PRIORITY, MAX_PRIORITY } from '../queue/job'
import type { ScheduleInput } from '../queue/queue'

/**
 * Turns request bodies into validated commands. Every rejection is an `invalid_data` error whose
 * message names the field and the problem. As in the original, JSON `null` counts as absent.
 */
type Fields = Record<string, unknown>

function invalid(message: string): ApiError {
  return new ApiError('invalid_data', message)
}

/** An empty body is an empty object; anything else must be a JSON object. */
export function parseJsonObject(body: Buffer): Fields {
  if (body.length === 0) return {}
  let parsed: unknown
  try {
    parsed = JSON.parse(body.toString('utf8'))
  } catch (err) {
    throw invalid(`invalid JSON in request body: ${(err as Error).message}`)
  }
  if (!isJsonObject(parsed)) throw invalid('request body must be a JSON object')
  return parsed
}

export const MAX_LANE_LENGTH = 128
const CONTROL_CHARACTER = /[\u0000-\u001f\u007f]/

export function laneField(fields: Fields): string {
  const lane = fields.lane
  if (lane === undefined || lane === null || lane === '') return DEFAULT_LANE
  if (typeof lane !== 'string') throw invalid('"lane" must be a string')
  if (lane.length > MAX_LANE_LENGTH || CONTROL_CHARACTER.test(lane)) {
    throw invalid(`"lane" must be at most ${MAX_LANE_LENGTH} characters, with no control characters`)
  }
  return lane
}

function priorityField(fields: Fields): number {
  const priority = fields.priority
  if (priority === undefined || priority === null) return DEFAULT_PRIORITY
  if (typeof priority !== 'number' || !Number.isInteger(priority) || priority < 0 || priority > MAX_PRIORITY) {
    throw invalid(`"priority" must be an integer from 0 to ${MAX_PRIORITY}`)
  }
  return priority
}

function parseJob(fields: Fields): ScheduleInput {
  const message = fields.message
  if (message === undefined || message === null) throw invalid('missing message')
  if (typeof message !== 'string') throw invalid('"message" must be a string')
  return { message, lane: laneField(fields), priority: priorityField(fields) }
}

/** `/schedule` takes one job (`{message, lane?, priority?}`) or a batch (`{"jobs": [...]}`). */
export type ScheduleRequest = { batch: false; job: ScheduleInput } | { batch: true; jobs: ScheduleInput[] }

export function parseSchedule(fields: Fields): ScheduleRequest {
  const jobs = fields.jobs
  if (jobs === undefined || jobs === null) return { batch: false, job: parseJob(fields) }
  if (fields.message !== undefined && fields.message !== null) throw invalid('give either "message" or "jobs", not both')
  if (!Array.isArray(jobs) || jobs.length === 0) throw invalid('"jobs" must be a non-empty array of jobs')
  return {
    batch: true,
    jobs: jobs.map((entry: unknown, i) => {
      try {
        if (!isJsonObject(entry)) throw invalid('must be a JSON object')
        return parseJob(entry)
      } catch (err) {
        throw invalid(`jobs[${i}]: ${(err as Error).message}`)
      }
    }),
  }
}

/** The longest `timeout` a receive_block may ask for: Node timers hold at most 2^31-1 ms. */
export const MAX_RECEIVE_TIMEOUT_SECONDS = 2147483

export interface BlockingReceive {
  lane: string
  /** Answer "empty queue" after this long with no job; undefined waits for ever. */
  timeoutMs: number | undefined
}

export function parseBlockingReceive(fields: Fields): BlockingReceive {
  const timeout = fields.timeout
  if (timeout === undefined || timeout === null) return { lane: laneField(fields), timeoutMs: undefined }
  if (typeof timeout !== 'number' || !Number.isFinite(timeout) || timeout < 0 || timeout > MAX_RECEIVE_TIMEOUT_SECONDS) {
    throw invalid(`"timeout" must be a number of seconds from 0 to ${MAX_RECEIVE_TIMEOUT_SECONDS}`)
  }
  return { lane: laneField(fields), timeoutMs: Math.round(timeout * 1000) }
}

import { DEFAULT_LANE, MAX_PRIORITY } from '../queue/job'
import type { RestoredJob } from '../queue/queue'

/**
 * The `queue.json` format of the original dispenserd: an object mapping each lane to its jobs in
 * serving order, each job with job_num, hash, timestamp, lane, priority and message. It is written
 * by `encodeJobsByLane` (queue/listing.ts), the same encoding `GET /jobs` answers with.
 */
export class SnapshotFormatError extends Error {}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value)
}

function fail(where: string, problem: string): never {
  throw new SnapshotFormatError(`${where}: ${problem}`)
}

function decodeJob(raw: unknown, laneKey: string, where: string): RestoredJob {
  if (!isObject(raw)) fail(where, 'expected a job object')
  const { job_num: jobNum, hash, timestamp, lane, priority, message } = raw
  if (typeof jobNum !== 'number' || !Number.isSafeInteger(jobNum) || jobNum < 1) fail(where, '"job_num" must be a positive integer')
  if (typeof message !== 'string') fail(where, '"message" must be a string')
  if (priority !== undefined && (typeof priority !== 'number' || !Number.isInteger(priority) || priority < 0 || priority > MAX_PRIORITY)) {
    fail(where, `"priority" must be an integer from 0 to ${MAX_PRIORITY}`)
  }
  if (lane !== undefined && lane !== null && typeof lane !== 'string') fail(where, '"lane" must be a string')
  if (hash !== undefined && typeof hash !== 'string') fail(where, '"hash" must be a string')
  let created: number | undefined
  if (timestamp !== undefined) {
    const ms = typeof timestamp === 'string' ? Date.parse(timestamp) : NaN
    if (Number.isNaN(ms)) fail(where, '"timestamp" must be an RFC 3339 time')
    created = Math.floor(ms / 1000)
  }
  return {
    jobNum,
    hash: hash === '' ? undefined : hash,
    created,
    lane: typeof lane === 'string' && lane !== '' ? lane : laneKey,
    priority: priority ?? 512,
    message,
  }
}

/** Parses a snapshot. An empty file is an empty queue; anything unreadable throws, naming the spot. */
export function decodeSnapshot(text: string): { lanes: string[]; jobs: RestoredJob[] } {
  if (text.trim() === '') return { lanes: [DEFAULT_LANE], jobs: [] }
  let parsed: unknown
  try {
    parsed = JSON.parse(text)
  } catch (err) {
    fail('not valid JSON', (err as Error).message)
  }
  if (!isObject(parsed)) fail('top level', 'expected an object mapping lane names to arrays of jobs')
  const jobs: RestoredJob[] = []
  for (const [laneKey, list] of Object.entries(parsed)) {
    if (list === null) continue // Go writes a nil slice as null
    if (!Array.isArray(list)) fail(`lane ${JSON.stringify(laneKey)}`, 'expected an array of jobs')
    list.forEach((raw, i) => jobs.push(decodeJob(raw, laneKey || DEFAULT_LANE, `lane ${JSON.stringify(laneKey)}, job ${i}`)))
  }
  return { lanes: Object.keys(parsed).filter((name) => name !== ''), jobs }
}
